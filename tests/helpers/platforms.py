"""Other platforms: the engine's own, and linux/arm64 or linux/amd64 under QEMU with a stand-in base."""

import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .dockerfiles import BASES
from .engine import docker
from .waits import settled

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
    """The tag .ci/make-standin-base gives a stand-in base for a platform other than the engine's."""
    return f"shortener-standin/{BASES[flavour]}-{platform.removeprefix('linux/')}"


def standin_index(flavour: str) -> str:
    """Where .ci/standin-registry serves the stand-in bases as one multi-platform index, as Docker Hub does."""
    return f"{os.environ.get('STANDIN_REGISTRY', '127.0.0.1:5000')}/library/{BASES[flavour]}"


def index_platforms(reference: str) -> set[str]:
    """The platforms a registry's index names for `reference` (none when no registry answers for it)."""
    inspected = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference],
                               capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if inspected.returncode != 0:
        return set()
    manifests = json.loads(inspected.stdout).get("manifests", [])
    return {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifests if "platform" in m}


# .ci/run starts the tests while the arm64 Alpine stand-in is still being built (the longest one);
# it names a file here that it writes once that stand-in is in the registry's index, or has failed.
PENDING = "STANDIN_PENDING"
PENDING_SECONDS = 1800


def wait_for_a_standin_being_built() -> None:
    pending = os.environ.get(PENDING)
    if not pending:
        return
    settled(Path(pending).exists, bool, PENDING_SECONDS, every=2)


@functools.cache
def emulated_base(flavour: str, platform: str) -> tuple[str | None, dict[str, str]]:
    """For a platform other than the engine's: (why it cannot be built here, or None; build contexts).

    The Dockerfiles are cross-built: the build stage runs on the engine's platform and the image is
    for the other, both `FROM` the same base name. So the base must be a multi-platform index, as on
    Docker Hub; offline, .ci/standin-registry serves the stand-ins as one, and a named build context
    puts it in the base's place.
    """
    base, index = BASES[flavour], standin_index(flavour)
    served = index_platforms(index)
    if not {platform, native_platform()} <= served and os.environ.get(PENDING):
        wait_for_a_standin_being_built()
        served = index_platforms(index)
    if {platform, native_platform()} <= served:
        contexts, run_image = {base: f"docker-image://{index}"}, index
    elif subprocess.run(["docker", "manifest", "inspect", base], capture_output=True, timeout=60).returncode == 0:
        contexts, run_image = {}, base  # a registry answers: the build pulls each platform's own base
    else:
        maker = ".ci/make-standin-alpine" if flavour == "alpine" else ".ci/make-standin-base"
        maker = f"{maker} --platform {platform}, then .ci/standin-registry, serve {index}"
        return f"no {platform} {base} here and no registry answers; {maker}", {}
    probe = subprocess.run(["docker", "run", "--rm", "--pull", "missing", "--platform", platform,
                            "--entrypoint", "python", run_image, "-c", "import platform; print(platform.machine())"],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if probe.returncode != 0:
        return (
            f"{platform} binaries do not run here (.ci/enable-emulation registers QEMU): {probe.stderr[-300:]}",
            {},
        )
    return None, contexts
