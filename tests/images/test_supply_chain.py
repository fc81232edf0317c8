"""What is in the image, and whether anything known is wrong with it (docs/supply-chain.md).

- The SBOM `make sbom` writes from an image lists exactly the wheels of the lock that applies
  (requirements.txt, plus requirements-postgres.txt with WITH_POSTGRES=1): nothing missing, nothing
  extra, the same versions, and each wheel's hash (on its distribution reference) one of the lock's
  for that pin. It also names
  exactly the distributions in the image's venv.
- `make audit` (pip-audit on the locks) finds no known vulnerability, where its data source answers;
  REQUIRE_AUDIT=1 makes an unanswered audit a failure.
- The one list of accepted vulnerabilities (.trivyignore.yaml) gives each entry a reason and a date,
  and an expired entry fails here.
"""

import datetime
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from tests.helpers.engine import base_available, build, docker
from tests.helpers.repo import ROOT
from tests.helpers.required import unavailable
from tests.images.test_wheels import Pin, pins

IGNORES = ROOT / ".trivyignore.yaml"
# The longest an accepted vulnerability may go unreviewed.
LONGEST_WAIVER = datetime.timedelta(days=90)
IMAGE_ENVIRONMENT = (
    "import json, os, platform, sys; from importlib.metadata import distributions; "
    "print(json.dumps({'machine': platform.machine(), "
    "'venv': sorted([d.metadata['Name'], d.version] for d in distributions())}))"
)


def expired_or_incomplete(entries: list[dict], today: datetime.date) -> list[str]:
    """What is wrong with each entry of the accepted-vulnerability list: the reasons to fail."""
    problems = []
    for entry in entries:
        name = entry.get("id", "an entry without an id")
        if not re.fullmatch(
            r"(CVE-\d{4}-\d+|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|PYSEC-\d{4}-\d+)", str(entry.get("id"))
        ):
            problems.append(f"{name}: not a CVE-, GHSA- or PYSEC- id")
        if len(str(entry.get("statement", "")).strip()) < 20:
            problems.append(f"{name}: no reason (statement) given")
        expires = entry.get("expired_at")
        if not isinstance(expires, datetime.date):
            problems.append(f"{name}: no expiry date (expired_at: YYYY-MM-DD)")
        elif expires <= today:
            problems.append(f"{name}: expired on {expires}; review it, then remove it or give a new date")
        elif expires - today > LONGEST_WAIVER:
            problems.append(f"{name}: expires {expires}, more than {LONGEST_WAIVER.days} days out")
    return problems


def test_every_accepted_vulnerability_has_a_reason_and_a_date_not_yet_passed() -> None:
    entries = (yaml.safe_load(IGNORES.read_text()) or {}).get("vulnerabilities") or []
    assert expired_or_incomplete(entries, datetime.datetime.now(datetime.UTC).date()) == []


def test_an_expired_or_unexplained_entry_is_caught() -> None:
    today = datetime.date(2026, 12, 1)
    entries = [
        {"id": "CVE-2026-1234", "statement": "only reachable through a feature this image never loads",
         "expired_at": datetime.date(2026, 11, 30)},
        {"id": "PYSEC-2026-7", "statement": "later", "expired_at": datetime.date(2026, 12, 31)},
        {"id": "GHSA-abcd-efgh-ijkl", "statement": "x" * 30},
        {"id": "CVE-2026-9", "statement": "x" * 30, "expired_at": datetime.date(2027, 12, 31)},
    ]  # fmt: skip
    problems = expired_or_incomplete(entries, today)
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "CVE-2026-1234", "PYSEC-2026-7", "GHSA-abcd-efgh-ijkl", "GHSA-abcd-efgh-ijkl", "CVE-2026-9"
    ], problems  # fmt: skip


def test_the_locks_have_no_known_vulnerability() -> None:
    """`make audit`: pip-audit on both locks, hashes required, no pip resolver run (nothing installed)."""
    result = subprocess.run(["make", "--no-print-directory", "-s", "audit", "AUDIT_FLAGS=--format=json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if result.returncode != 0 and not result.stdout.strip().startswith("{"):
        said = result.stderr.strip().splitlines()[-3:]
        if any(re.search(r"could not be audited|Connection|resolve|timed out|Max retries", line) for line in said):
            unavailable(f"pip-audit's vulnerability data did not answer for every pin here: {said[0]}", "REQUIRE_AUDIT")
        pytest.fail(f"make audit failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    found = [(dep["name"], dep["version"], [vuln["id"] for vuln in dep["vulns"]])
             for dep in json.loads(result.stdout)["dependencies"] if dep.get("vulns")]  # fmt: skip
    assert result.returncode == 0 and found == [], f"known vulnerabilities in the locks: {found}"


def lock_pins(image: str, postgres: bool) -> dict[str, Pin]:
    """The pins the image's lock files hold for its platform."""
    machine = json.loads(docker("run", "--rm", "--entrypoint", "python", image, "-c", IMAGE_ENVIRONMENT))["machine"]
    flavour = (
        "musllinux"
        if "alpine" in docker("run", "--rm", "--entrypoint", "cat", image, "/etc/os-release")
        else "manylinux"
    )
    postgres_names = {canonicalize_name(name) for name in re.findall(r"^([A-Za-z0-9._-]+)==",
                      (ROOT / "requirements-postgres.txt").read_text(), re.MULTILINE)}  # fmt: skip
    return {pin.name: pin for pin in pins(f"{flavour}-{machine}") if postgres or pin.name not in postgres_names}


def sbom_of(image: str, folder: Path) -> dict:
    name, flavour = image.rsplit(":", 1)
    result = subprocess.run(["make", "--no-print-directory", "sbom", f"IMAGE={name}", f"SBOM_DIR={folder}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert result.returncode == 0, f"make sbom failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return json.loads((folder / f"{name}-{flavour}.cdx.json").read_text())


def assert_sbom_is_the_lock(image: str, folder: Path, postgres: bool) -> None:
    sbom = sbom_of(image, folder)
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"].startswith("1.")
    components = {canonicalize_name(c["name"]): c for c in sbom["components"]}
    assert len(components) == len(sbom["components"]), "a distribution is listed twice"
    lock = lock_pins(image, postgres)
    assert sorted(components) == sorted(lock), (
        f"missing from the SBOM: {sorted(lock.keys() - components.keys())}; "
        f"not in the lock: {sorted(components.keys() - lock.keys())}"
    )
    for name, component in components.items():
        assert component["version"] == lock[name].version, f"{name}: {component['version']} != {lock[name].version}"
        # CycloneDX puts an artifact's hash on its reference: the wheel is the component's distribution.
        wheels = [ref for ref in component.get("externalReferences", []) if ref["type"] == "distribution"]
        hashes = [h["content"] for ref in wheels for h in ref.get("hashes", []) if h["alg"] == "SHA-256"]
        assert len(hashes) == 1 and hashes[0] in lock[name].hashes, f"{name}: hash {hashes} is not one the lock has"
    # And the SBOM's record is the venv: every distribution in it, at that version.
    venv = json.loads(docker("run", "--rm", "--entrypoint", "/opt/venv/bin/python", image, "-c", IMAGE_ENVIRONMENT))
    assert sorted((canonicalize_name(n), v) for n, v in venv["venv"]) == sorted(
        (name, c["version"]) for name, c in components.items()
    ), "the image's venv holds other distributions than its SBOM lists"


@pytest.mark.docker
def test_the_sbom_lists_exactly_the_locked_wheels(image: str, tmp_path: Path) -> None:
    assert_sbom_is_the_lock(image, tmp_path, postgres=False)


@pytest.mark.docker
def test_the_sbom_of_an_image_with_postgres_adds_exactly_its_lock(docker_engine: None, tmp_path: Path) -> None:
    if reason := base_available("slim"):
        pytest.skip(reason)
    tag = "shortener-sbom-postgres:slim"
    try:
        build("Dockerfile.slim", tag, args={"WITH_POSTGRES": "1"})
        assert_sbom_is_the_lock(tag, tmp_path, postgres=True)
    finally:
        docker("image", "rm", "-f", tag, check=False)
