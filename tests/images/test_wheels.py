"""The lock's wheels for every platform the images target, checked below the image.

The images are built here for linux/amd64 and linux/arm64 on Debian (tests/images/test_images.py), but
no Alpine base can be had without a registry. So what the images rely on is checked on the wheels
themselves, for glibc (manylinux: Dockerfile.slim) and musl (musllinux: Dockerfile.alpine), each on
x86_64 and aarch64: every pin has a wheel, the wheels match the lock's hashes, and the Dockerfile's own
strip step leaves no debug symbols.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.helpers.dockerfiles import instructions
from tests.helpers.repo import ROOT
from tests.helpers.required import unavailable
from tests.helpers.workshop import commands_on

LOCKS = ("requirements.txt", "requirements-postgres.txt")
# The newest C library each base has: python:3.13-slim is Debian trixie (glibc 2.41),
# python:3.13-alpine is Alpine 3.22 (musl 1.2). Older manylinux/musllinux tags run there too.
GLIBC_MINOR = 41
MUSL_MINOR = 2
PLATFORMS = {  # platform -> the Dockerfile whose base has that C library
    "manylinux-x86_64": "Dockerfile.slim",
    "manylinux-aarch64": "Dockerfile.slim",
    "musllinux-x86_64": "Dockerfile.alpine",
    "musllinux-aarch64": "Dockerfile.alpine",
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shortener-wheels"


def platform_tags(platform: str) -> list[str]:
    """The wheel platform tags an interpreter on that C library and machine accepts, best first."""
    libc, arch = platform.split("-")
    if libc == "musllinux":
        return [f"musllinux_1_{minor}_{arch}" for minor in range(MUSL_MINOR, -1, -1)]
    oldest = 5 if arch == "x86_64" else 17  # aarch64 manylinux starts at manylinux2014 (glibc 2.17)
    return [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, oldest - 1, -1)] + [
        f"manylinux{alias}_{arch}" for alias in ("2014", "2010", "1")[: 3 if arch == "x86_64" else 1]
    ]


def instruction(dockerfile: str, containing: str) -> str:
    """The one instruction of `dockerfile` that contains `containing`."""
    found = [line for line in instructions(dockerfile) if containing in line]
    assert len(found) == 1, f"{dockerfile}: expected one instruction with {containing!r}, found {len(found)}"
    return found[0]


def python_version() -> str:
    """The Python of the images' base, e.g. '3.13'."""
    found = re.search(r"^FROM python:(\d+\.\d+)-slim", (ROOT / "Dockerfile.slim").read_text(), re.MULTILINE)
    assert found, "Dockerfile.slim names no python:X.Y-slim base"
    return found[1]


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: frozenset[str]


def marker_environment(platform: str) -> dict[str, str]:
    """What environment markers see in the image of that platform (the locks are resolved for all)."""
    arch = platform.split("-")[1]
    return {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": arch,
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": python_version(), "python_full_version": f"{python_version()}.0"}  # fmt: skip


def pins(platform: str) -> list[Pin]:
    """The pins of the production locks that apply on `platform`, as `make requirements` writes them:
    `name==version [; marker] \\` then `--hash=sha256:...` lines (a universal lock also names, say,
    Windows-only packages, which pip leaves out in the image)."""
    found = []
    for lock in LOCKS:
        text = (ROOT / lock).read_text()
        for block in re.split(r"\n(?=[A-Za-z0-9])", text):
            head = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*(?:\\|\n|$)", block)
            if head and (head[3] is None or Marker(head[3]).evaluate(marker_environment(platform))):
                hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
                found.append(Pin(canonicalize_name(head[1]), head[2], hashes))
    return found


@dataclass
class Wheelhouse:
    platform: str
    wheels: dict[Pin, Path]  # pin -> the one wheel pip chose for this platform


_downloaded: dict[str, Wheelhouse] = {}


@pytest.fixture(scope="module", params=PLATFORMS)
def wheelhouse(request: pytest.FixtureRequest) -> Wheelhouse:
    """`pip download` of both locks for one platform, hashes required, binary only (cached)."""
    platform = request.param
    if platform in _downloaded:
        return _downloaded[platform]
    folder = CACHE / platform
    tags = platform_tags(platform)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--python-version", python_version(), "--implementation", "cp",
               "--abi", f"cp{python_version().replace('.', '')}", "--abi", "abi3", "--abi", "none",
               *(arg for tag in tags for arg in ("--platform", tag)),
               "--dest", str(folder), *(arg for lock in LOCKS for arg in ("-r", str(ROOT / lock)))]  # fmt: skip
    # Like `make requirements`: files from the index, not from local wheel folders a machine may set.
    env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"} | {"PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert result.returncode == 0, f"pip download for {platform} failed:\n{result.stderr[-3000:]}"
    version = tuple(int(part) for part in python_version().split("."))
    supported = {*cpython_tags(version, platforms=tags), *compatible_tags(version, f"cp{version[0]}{version[1]}", tags)}
    wheels: dict[Pin, Path] = {}
    for pin in pins(platform):
        candidates = [
            path
            for path in folder.glob("*.whl")
            for name, found_version, _, file_tags in [parse_wheel_filename(path.name)]
            if name == pin.name and str(found_version) == pin.version and file_tags & supported
        ]
        assert len(candidates) <= 1, f"{platform}: more than one wheel for {pin.name}: {candidates}"
        if candidates:
            wheels[pin] = candidates[0]
    _downloaded[platform] = Wheelhouse(platform, wheels)
    return _downloaded[platform]


def test_every_pin_has_a_wheel_for_every_platform(wheelhouse: Wheelhouse) -> None:
    missing = [f"{pin.name}=={pin.version}" for pin in pins(wheelhouse.platform) if pin not in wheelhouse.wheels]
    assert not missing, f"{wheelhouse.platform}: no wheel for {missing}: the image build would fail there"


def test_the_wheels_are_the_files_the_lock_names(wheelhouse: Wheelhouse) -> None:
    for pin, wheel in wheelhouse.wheels.items():
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert digest in pin.hashes, f"{wheel.name}: sha256 {digest} is not among the lock's hashes for {pin.name}"


def unpacked(wheelhouse: Wheelhouse, folder: Path) -> Path:
    """The wheels unpacked as pip lays them out in the image's venv; returns the venv folder."""
    site = folder / "opt" / "venv" / "lib" / f"python{python_version()}" / "site-packages"
    for wheel in wheelhouse.wheels.values():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    return folder / "opt" / "venv"


def strip_handles(arch: str) -> bool:
    """Whether this machine's strip can rewrite ELF files for `arch` (binutils-multiarch can)."""
    targets = subprocess.run(["strip", "--help"], capture_output=True, text=True, check=False).stdout
    return {"x86_64": "elf64-x86-64", "aarch64": "elf64-littleaarch64"}[arch] in targets


def practice_check(name: str) -> str:
    """The Python source of one check in container/structure/practices.yaml (what runs in the image)."""
    config = yaml.safe_load((ROOT / "container" / "structure" / "practices.yaml").read_text())
    [check] = [check for check in config["commandTests"] if check["name"] == name]
    assert check["command"] == "python" and check["args"][0] == "-c"
    return check["args"][1]


def test_the_dockerfiles_strip_step_leaves_no_debug_symbols(wheelhouse: Wheelhouse, tmp_path: Path) -> None:
    """The strip RUN step of the platform's Dockerfile, run on its wheels, then the image's own check."""
    arch = wheelhouse.platform.split("-")[1]
    if not shutil.which("strip") or not strip_handles(arch):
        unavailable(f"this machine's strip cannot rewrite {arch} files: apt-get install binutils-multiarch",
                    "REQUIRE_BINUTILS")  # fmt: skip
    venv = unpacked(wheelhouse, tmp_path)
    dockerfile = PLATFORMS[wheelhouse.platform]
    # The command of that RUN instruction (or of its `&&` part) that runs strip, pointed at the wheels.
    run = instruction(dockerfile, "strip --strip-debug").removeprefix("RUN ")
    [step] = [part for part in run.split(" && ") if "strip --strip-debug" in part]
    step = step.replace("/opt/venv", str(venv))
    subprocess.run(["sh", "-ec", step], check=True, timeout=300)
    libraries = [path for path in venv.rglob("*") if path.is_file() and path.open("rb").read(4) == b"\x7fELF"]
    assert len(libraries) > 5, f"only {len(libraries)} native libraries unpacked from the {wheelhouse.platform} wheels"
    check = practice_check("no native library carries debug symbols").replace('"/opt/venv"', repr(str(venv)))
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n", (
        f"{dockerfile}'s strip step left debug symbols in {wheelhouse.platform} wheels: {result.stdout}"
    )


@pytest.mark.parametrize("wheelhouse", ["manylinux-x86_64", "manylinux-aarch64"], indirect=True)
def test_the_workshops_unstripped_uvloop_is_the_size_its_page_shows_on_every_platform(wheelhouse: Wheelhouse) -> None:
    """Step 11's break-it shows step 10's unstripped uvloop, as checked on linux/amd64; on Apple silicon
    it is the aarch64 wheel's module (the stripped one is checked in the arm64 image, test_images.py)."""
    [command] = [c for c in commands_on("11-strip-and-bytecode", "workshop:10") if "uvloop.loop" in c.line]
    [wheel] = [path for pin, path in wheelhouse.wheels.items() if pin.name == "uvloop"]
    with zipfile.ZipFile(wheel) as archive:
        [module] = [info for info in archive.infolist() if re.fullmatch(r"uvloop/loop\.cpython-\S+\.so", info.filename)]
    assert [f"{module.file_size // 1_000_000} MB"] == command.shown, f"{wheelhouse.platform}: {wheel.name}"


@pytest.mark.docker
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_dockerfiles_pip_step_asks_for_the_targets_wheels(platform: str, docker_engine: None) -> None:
    """The pip step of a cross-build runs on the builder's machine and names the target's wheel tags
    (PIP_PLATFORM): every tag the lock's wheels are checked for above, and none of another machine or
    C library. Run as the Dockerfile runs it, in its base, for the target's TARGETARCH."""
    from tests.helpers.dockerfiles import BASES
    from tests.helpers.engine import base_available, docker

    dockerfile, (libc, arch) = PLATFORMS[platform], platform.split("-")
    flavour = "slim" if dockerfile == "Dockerfile.slim" else "alpine"
    if reason := base_available(flavour):
        pytest.skip(reason)
    found = re.search(
        r"""PIP_PLATFORM="\$\(python -c '(.+?)' "\$TARGETARCH"\)\"""", instruction(dockerfile, "PIP_PLATFORM")
    )
    assert found, f'{dockerfile}: no PIP_PLATFORM="$(python -c \'...\' "$TARGETARCH")" in its pip step'
    targetarch = {"x86_64": "amd64", "aarch64": "arm64"}[arch]
    asked = docker("run", "--rm", BASES[flavour], "python", "-c", found[1], targetarch).split()
    missing = sorted(set(platform_tags(platform)) - set(asked))
    assert not missing, f"{dockerfile} for {targetarch} does not ask for {missing}: those wheels would be refused"
    foreign = [tag for tag in asked if not tag.endswith(f"_{arch}") or not tag.startswith((libc, "linux_"))]
    assert not foreign, f"{dockerfile} for {targetarch} asks for wheels of another platform: {foreign}"
