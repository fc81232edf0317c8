"""The tools template users point at these files see what they need to see.

checkov (a well-kept scanner, run offline) finds nothing on the Dockerfiles or the GitHub workflow
that is not skipped with a reason, and still catches the faults it exists for: a base image it cannot
read (FROM ${BASE_IMAGE}, which these Dockerfiles had) and a workflow open to shell injection.
Dependabot's config is valid against its schema (check-jsonschema's vendored copy, offline) and
covers what it promises: the Dockerfiles' base images, the pip locks and the actions.
"""

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers.repo import ROOT, tool
from tests.helpers.scanners import checkov

DOCKERFILES = ("Dockerfile.slim", "Dockerfile.alpine")
WORKFLOWS = ROOT / ".github" / "workflows"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
LOCKS = ("requirements.txt", "requirements-postgres.txt", "requirements-dev.txt")


def scan(framework: str, files: list[Path]) -> dict[str, list[dict]]:
    """checkov's passed, failed and skipped checks on `files`, each as (check id, file name, reason)."""
    # --skip-download: no policy or version download from checkov's vendor; everything runs offline.
    command = [checkov(), "--skip-download", "--framework", framework, "--output", "json", "--compact",
               *(arg for file in files for arg in ("--file", str(file)))]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), f"checkov did not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    [report] = [part for part in (report if isinstance(report, list) else [report]) if part["check_type"] == framework]
    assert report["summary"]["parsing_errors"] == 0, f"checkov could not parse {files}"
    return {
        outcome: [
            {"id": check["check_id"], "file": Path(check["file_path"]).name,
             "reason": check.get("check_result", {}).get("suppress_comment") or ""}
            for check in report["results"][outcome]
        ]
        for outcome in ("passed_checks", "failed_checks", "skipped_checks")
    }  # fmt: skip


def assert_clean(results: dict[str, list[dict]], files: list[Path], at_least: int) -> None:
    failed = [(check["id"], check["file"]) for check in results["failed_checks"]]
    assert failed == [], f"checkov findings, neither fixed nor skipped with a reason: {failed}"
    skipped = {check["id"]: check["reason"] for check in results["skipped_checks"]}
    assert all(len(reason) > 20 for reason in skipped.values()), f"a skip without a reason: {skipped}"
    for file in files:
        ran = [check for check in results["passed_checks"] if check["file"] == file.name]
        assert len(ran) >= at_least, f"checkov ran almost no check on {file.name}: {len(ran)}"


def test_checkov_finds_nothing_in_the_dockerfiles_that_is_not_skipped_with_a_reason() -> None:
    files = [ROOT / name for name in DOCKERFILES]
    assert_clean(scan("dockerfile", files), files, at_least=100)


def test_checkov_reads_the_base_image_so_a_base_in_a_build_argument_fails(tmp_path: Path) -> None:
    """What the Dockerfiles had before: FROM ${BASE_IMAGE} hides the tag, and CKV_DOCKER_7 says so."""
    mutants = []
    for name in DOCKERFILES:
        text = (ROOT / name).read_text()
        base = re.search(r"^FROM (\S+)", text, re.MULTILINE)[1]
        assert "$" not in base, f"{name}: FROM {base} is not a literal image, so scanners cannot read it"
        mutant = tmp_path / name
        mutant.write_text(f"ARG BASE_IMAGE={base}\n" + re.sub(rf"^FROM {re.escape(base)}", "FROM ${BASE_IMAGE}",
                                                              text, flags=re.MULTILINE))  # fmt: skip
        mutants.append(mutant)
    failed = {(check["id"], check["file"]) for check in scan("dockerfile", mutants)["failed_checks"]}
    assert failed == {("CKV_DOCKER_7", name) for name in DOCKERFILES}


def test_checkov_finds_nothing_in_the_github_workflows_that_is_not_skipped_with_a_reason() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflow in .github/workflows"
    assert_clean(scan("github_actions", files), files, at_least=10)


def test_checkov_catches_a_workflow_step_open_to_shell_injection(tmp_path: Path) -> None:
    """The same scan on ci.yml with a step that pastes a pull request's title into a shell."""
    workflow = (WORKFLOWS / "ci.yml").read_text()
    anchor = "        run: make test\n"
    assert anchor in workflow, "ci.yml's test job no longer ends with `run: make test`: update this mutant"
    step = '      - name: Greet\n        run: echo "${{ github.event.pull_request.title }}"\n'
    mutant = tmp_path / ".github" / "workflows" / "ci.yml"
    mutant.parent.mkdir(parents=True)
    mutant.write_text(workflow.replace(anchor, anchor + step, 1))
    assert "CKV_GHA_2" in {check["id"] for check in scan("github_actions", [mutant])["failed_checks"]}


def test_the_dependabot_config_is_valid() -> None:
    # The schema is the one check-jsonschema vendors (from SchemaStore): no download.
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{DEPENDABOT.relative_to(ROOT)} is not a valid Dependabot config:\n{result.stdout}"


# Dependabot's docker-compose updater reads the files whose name matches this (dependabot-core,
# docker_compose/lib/dependabot/docker_compose/file_fetcher.rb), in the directories listed.
COMPOSE_FILE_NAME = re.compile(r"(docker-)?compose(-[\w]+)?(?>\.[\w-]+)?\.ya?ml", re.IGNORECASE)


def test_dependabot_updates_the_base_images_the_locks_and_the_actions_weekly() -> None:
    updates = {update["package-ecosystem"]: update for update in yaml.safe_load(DEPENDABOT.read_text())["updates"]}
    assert sorted(updates) == ["docker", "docker-compose", "github-actions", "pip"]
    assert all(update["schedule"]["interval"] == "weekly" for update in updates.values())
    assert all(update["directory"] == "/" for name, update in updates.items() if name in ("pip", "github-actions"))
    assert "/" in updates["docker"]["directories"]
    # Dependabot's docker updater reads the files in that directory whose name contains "dockerfile".
    assert {path.name for path in ROOT.iterdir() if "dockerfile" in path.name.lower()} == set(DOCKERFILES)
    # Its pip updater re-pins a compiled file with uv, the same way, when the header shows uv's command.
    for lock in LOCKS:
        header = (ROOT / lock).read_text().splitlines()[1]
        assert header.startswith("#    uv pip compile --universal "), f"{lock}: not `make requirements`' header"


def test_dependabot_updates_every_image_a_compose_or_stack_file_names() -> None:
    """Every tracked YAML file that names an image outside Kubernetes' folder is one the docker-compose
    updater reads: its name matches, in a directory it lists. Before, nginx and postgres were in none."""
    updates = {update["package-ecosystem"]: update for update in yaml.safe_load(DEPENDABOT.read_text())["updates"]}
    directories = {directory.strip("/") for directory in updates["docker-compose"]["directories"]}
    tracked = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    naming = [Path(name) for name in tracked
              if not name.startswith(("deploy/kubernetes/", ".github/", "docs/workshop/", "tests/"))
              and re.search(r"^\s+image:\s*[\w./-]+:[\w.-]+\s*$", (ROOT / name).read_text(), re.MULTILINE)]  # fmt: skip
    assert {str(path) for path in naming} >= {"compose.yaml", "deploy/swarm/compose.yaml"}, naming
    unread = [str(path) for path in naming
              if not (COMPOSE_FILE_NAME.search(path.name) and str(path.parent).strip(".") in directories)]  # fmt: skip
    assert unread == [], f"Dependabot updates no image in {unread}"
    # Kubernetes manifests: the docker updater reads tagged images in the folders it lists. Before,
    # deploy/kubernetes/front-door.yaml's nginx was in none.
    docker_folders = {directory.strip("/") for directory in updates["docker"]["directories"]}
    tagged = {str(Path(name).parent) for name in tracked if name.startswith("deploy/kubernetes/")
              and re.search(r"^\s+image:\s*[\w./-]+:[\w.-]+\s*$", (ROOT / name).read_text(), re.MULTILINE)}  # fmt: skip
    assert tagged and tagged <= docker_folders, f"Dependabot updates no image in {sorted(tagged - docker_folders)}"
