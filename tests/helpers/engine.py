"""The Docker engine for the tests: the CLI, builds, bases, and containers run hardened on 127.0.0.1."""

import functools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .dockerfiles import BASES
from .repo import ROOT
from .required import unavailable
from .server import free_port, wait_until_healthy

STANDIN_LABEL = "io.github.shortener.standin"
MINIMUM_ENGINE = 25
# The migrate step's command: the same image, another command (compose.yaml's migrate service).
MIGRATE = ["python", "-m", "shortener_app.migrate"]
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


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
                    "HEALTHCHECK --start-interval (.ci/install-docker-tools)", "REQUIRE_DOCKER")  # fmt: skip
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        unavailable("docker buildx is not installed (.ci/install-docker-tools)", "REQUIRE_DOCKER")


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
        return f"{base} is not local and no registry answers; .ci/make-standin-alpine builds a stand-in"
    return f"{base} is not local and no registry answers; .ci/make-standin-base builds a stand-in"


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
    timeout: float = 600,
    no_cache: bool = False,
) -> str:
    """Build with buildx into the local engine; `text` replaces the Dockerfile's contents."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    build_args = {"VERSION": "test", "REVISION": revision or "unknown",
                  "CREATED": datetime.now(UTC).isoformat(timespec="seconds"), **(args or {})}  # fmt: skip
    command = ["buildx", "build", "--load", "-q", "-t", tag, *(["--no-cache"] if no_cache else []),
               *(f"--build-arg={name}={value}" for name, value in build_args.items()),
               *(["--platform", platform] if platform else []),
               *(f"--build-context={name}={source}" for name, source in (contexts or {}).items()),
               "-f", "-" if text is not None else str(ROOT / dockerfile), str(context)]  # fmt: skip
    return docker(*command, stdin=text, timeout=timeout).strip()


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
    image: str,
    *,
    volume: str | None = None,
    extra: tuple[str, ...] = (),
    seconds: float = 30,
    migrate: bool = True,
) -> Iterator[Container]:
    """The image run hardened, published on a free 127.0.0.1 port, removed afterwards.

    With `migrate`, the migrate step runs first, as compose runs it: the same image, hardening, volume
    and settings, with `python -m shortener_app.migrate` for command. Without a volume named, one of
    the container's own holds /data for both, and goes with it."""
    port = free_port()
    name = f"shortener-test-{port}"
    own_volume = f"{name}-data" if migrate and volume is None else None
    volume = volume or own_volume
    mounts = ["-v", f"{volume}:/data"] if volume else []
    try:
        if migrate:
            docker("run", "--rm", "--name", f"{name}-migrate", *HARDENED, *mounts, *extra, image, *MIGRATE)
        docker("run", "-d", "--name", name, *HARDENED, *mounts, "-p", f"127.0.0.1:{port}:8000", *extra, image)
        container = Container(name, f"http://127.0.0.1:{port}")
        wait_until_healthy(container.url, seconds=seconds)
        yield container
    finally:
        docker("rm", "-f", "-v", name, check=False)
        if own_volume:
            docker("volume", "rm", "-f", own_volume, check=False)


def wait_for_health_status(name: str, seconds: float = 40) -> float:
    """Seconds until Docker's own HEALTHCHECK reports healthy."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", name, check=False).strip()
        if status == "healthy":
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{name} was not reported healthy within {seconds} s")
