"""Building and running the images for the tests, through the docker CLI and 127.0.0.1 only."""

import functools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .support import ROOT, free_port, tool, unavailable, wait_until_healthy

IMAGES = {"slim": "Dockerfile.slim", "alpine": "Dockerfile.alpine"}
BASES = {"slim": "python:3.13-slim", "alpine": "python:3.13-alpine"}
STANDIN_LABEL = "io.github.shortener.standin"
MINIMUM_ENGINE = 25
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def instructions(dockerfile: str) -> list[str]:
    """The file's instructions, continuation lines joined and comments dropped."""
    text = (ROOT / dockerfile).read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def docker(*args: str, check: bool = True, timeout: float = 600, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, input=stdin
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def require_engine() -> None:
    if shutil.which("docker") is None:
        unavailable("no docker CLI on PATH", "REQUIRE_DOCKER")
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if probe.returncode != 0:
        unavailable(f"no Docker engine answers: {probe.stderr.strip()[:200]}", "REQUIRE_DOCKER")
    version = probe.stdout.strip()
    if int(version.split(".")[0]) < MINIMUM_ENGINE:
        unavailable(f"Docker Engine {version} is older than {MINIMUM_ENGINE}, the first that knows "
                    "HEALTHCHECK --start-interval (scripts/install-docker-tools)", "REQUIRE_DOCKER")  # fmt: skip
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        unavailable("docker buildx is not installed (scripts/install-docker-tools)", "REQUIRE_DOCKER")


@functools.cache
def present_or_pulled(image: str) -> bool:
    """Whether the engine has `image`, after one try to pull it."""
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0:
        return True
    pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True, timeout=120, check=False)
    return pulled.returncode == 0


def base_available(flavour: str) -> str | None:
    """None when the base image is here (or could be pulled); else why it is not."""
    base = BASES[flavour]
    if present_or_pulled(base):
        return None
    if flavour == "alpine":
        return f"{base} is not local and no registry answers; no Alpine stand-in can be built offline"
    return f"{base} is not local and no registry answers; scripts/make-standin-base builds a stand-in"


PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class PlatformImage:
    """An image built for one platform; `emulated` when that is not the engine's own (QEMU)."""

    tag: str
    flavour: str
    platform: str
    emulated: bool


@functools.cache
def native_platform() -> str:
    """The engine's own platform, e.g. linux/amd64; any other one runs under emulation (QEMU)."""
    arch = docker("version", "--format", "{{.Server.Arch}}").strip()
    return f"linux/{arch}"


def standin_for(flavour: str, platform: str) -> str:
    """The tag scripts/make-standin-base gives a stand-in base for a platform other than the engine's."""
    return f"shortener-standin/{BASES[flavour]}-{platform.removeprefix('linux/')}"


@functools.cache
def emulated_base(flavour: str, platform: str) -> tuple[str | None, dict[str, str]]:
    """For a platform other than the engine's: (why it cannot be built here, or None; build contexts).

    The engine's classic image store keeps one image per tag, so a stand-in for another platform
    has a tag of its own and takes the base's place through a named build context.
    """
    base, standin = BASES[flavour], standin_for(flavour, platform)
    inspected = subprocess.run(["docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", standin],
                               capture_output=True, text=True, check=False)  # fmt: skip
    if inspected.returncode == 0 and inspected.stdout.strip() == platform:
        contexts = {base: f"docker-image://{standin}"}
    elif subprocess.run(["docker", "manifest", "inspect", base], capture_output=True, timeout=60).returncode == 0:
        contexts = {}  # a registry answers: the build pulls the platform's own base
    else:
        maker = "no Alpine stand-in can be built offline" if flavour == "alpine" else (
            f"scripts/make-standin-base --platform {platform} builds {standin}")  # fmt: skip
        return f"no {platform} {base} here and no registry answers; {maker}", {}
    probe = subprocess.run(["docker", "run", "--rm", "--platform", platform, "--entrypoint", "python",
                            standin if contexts else base, "-c", "import platform; print(platform.machine())"],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if probe.returncode != 0:
        return (
            f"{platform} binaries do not run here (scripts/enable-emulation registers QEMU): {probe.stderr[-300:]}",
            {},
        )
    return None, contexts


def describe_base(flavour: str) -> str:
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", BASES[flavour])) or {}
    kind = f"STAND-IN ({labels[STANDIN_LABEL]})" if STANDIN_LABEL in labels else "official image"
    return f"{BASES[flavour]}: {kind}"


def build(
    dockerfile: str | None,
    tag: str,
    *,
    text: str | None = None,
    context: Path = ROOT,
    args: dict[str, str] | None = None,
    platform: str | None = None,
    contexts: dict[str, str] | None = None,
) -> str:
    """Build with buildx into the local engine; `text` replaces the Dockerfile's contents."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    build_args = {"VERSION": "test", "REVISION": revision or "unknown",
                  "CREATED": datetime.now(UTC).isoformat(timespec="seconds"), **(args or {})}  # fmt: skip
    command = ["buildx", "build", "--load", "-q", "-t", tag,
               *(f"--build-arg={name}={value}" for name, value in build_args.items()),
               *(["--platform", platform] if platform else []),
               *(f"--build-context={name}={source}" for name, source in (contexts or {}).items()),
               "-f", "-" if text is not None else str(ROOT / dockerfile), str(context)]  # fmt: skip
    return docker(*command, stdin=text).strip()


@dataclass
class Container:
    name: str
    url: str

    def logs(self) -> str:
        result = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(docker("inspect", "-f", "{{json .State}}", self.name))

    def stop(self) -> tuple[int, float]:
        """`docker stop`: the exit code, and the seconds it took."""
        start = time.monotonic()
        docker("stop", self.name)
        took = time.monotonic() - start
        return self.state()["ExitCode"], took


@contextmanager
def running(
    image: str, *, volume: str | None = None, extra: tuple[str, ...] = (), seconds: float = 30
) -> Iterator[Container]:
    """The image run hardened, published on a free 127.0.0.1 port, removed afterwards."""
    port = free_port()
    name = f"shortener-test-{port}"
    mounts = ["-v", f"{volume}:/data"] if volume else []
    docker("run", "-d", "--name", name, *HARDENED, *mounts, "-p", f"127.0.0.1:{port}:8000", *extra, image)
    container = Container(name, f"http://127.0.0.1:{port}")
    try:
        wait_until_healthy(container.url, seconds=seconds)
        yield container
    finally:
        docker("rm", "-f", "-v", name, check=False)


def wait_for_health_status(name: str, seconds: float = 40) -> float:
    """Seconds until Docker's own HEALTHCHECK reports healthy."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", name, check=False).strip()
        if status == "healthy":
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{name} was not reported healthy within {seconds} s")


STRUCTURE = ROOT / "tests" / "structure"


def practice_configs(flavour: str) -> list[Path]:
    """The container-structure-test configs any app built from the Dockerfile must pass."""
    return [STRUCTURE / "practices.yaml", STRUCTURE / f"{flavour}.yaml"]


APP_FACTS = STRUCTURE / "shortener.yaml"


def structure_test(
    image: str, flavour: str, platform: str | None = None, *, configs: list[Path] | None = None
) -> subprocess.CompletedProcess[str]:
    """The practices, the flavour's own config and this app's facts (or just `configs`), run on `image`.

    The platform is always named: container-structure-test otherwise assumes linux/amd64.

    Each container it starts gets an anonymous volume for VOLUME /data, which it never removes;
    the dangling volumes that appeared during the run are removed afterwards.
    """
    configs = configs if configs is not None else [*practice_configs(flavour), APP_FACTS]
    before = set(docker("volume", "ls", "-q").split())
    try:
        return subprocess.run(
            [tool("container-structure-test"), "test", "--no-color", "--image", image,
             "--platform", platform or native_platform(),
             *(arg for config in configs for arg in ("--config", str(config)))],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
    finally:
        left = set(docker("volume", "ls", "-q", "--filter", "dangling=true").split()) - before
        if left:
            docker("volume", "rm", *sorted(left), check=False)
