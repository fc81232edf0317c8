"""Other platforms: the engine's own, and linux/arm64 or linux/amd64 under QEMU with a stand-in base."""

import functools
import subprocess
from dataclasses import dataclass

from .dockerfiles import BASES
from .engine import docker

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
            f".ci/make-standin-base --platform {platform} builds {standin}")  # fmt: skip
        return f"no {platform} {base} here and no registry answers; {maker}", {}
    probe = subprocess.run(["docker", "run", "--rm", "--platform", platform, "--entrypoint", "python",
                            standin if contexts else base, "-c", "import platform; print(platform.machine())"],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if probe.returncode != 0:
        return (
            f"{platform} binaries do not run here (.ci/enable-emulation registers QEMU): {probe.stderr[-300:]}",
            {},
        )
    return None, contexts
