"""container-structure-test: the practice configs any app keeps (container/structure/), and this app's facts."""

import re
import subprocess
from pathlib import Path

from .engine import docker
from .platforms import native_platform
from .repo import ROOT, tool

PRACTICES = ROOT / "container" / "structure"
APP_FACTS = ROOT / "tests" / "images" / "shortener.yaml"
# Bounds, not timings: each command test is a new container, and under QEMU a Python start takes 3 to
# 6 s. The arm64 slim run's 27 tests took 4 min alone and over 10 min beside three other test files
# on two cores (CI, 2026-12-07).
TIMEOUT = {True: 600, False: 1800}
ANONYMOUS = re.compile(r"[0-9a-f]{64}")


def practice_configs(flavour: str) -> list[Path]:
    """The container-structure-test configs any app built from the Dockerfile must pass."""
    return [PRACTICES / "practices.yaml", PRACTICES / f"{flavour}.yaml"]


def structure_test(
    image: str, flavour: str, platform: str | None = None, *, configs: list[Path] | None = None
) -> subprocess.CompletedProcess[str]:
    """The practices, the flavour's own config and this app's facts (or just `configs`), run on `image`.

    The platform is always named: container-structure-test otherwise assumes linux/amd64.

    Each container it starts gets an anonymous volume for VOLUME /data, which it never removes;
    the dangling volumes that appeared during the run are removed afterwards.
    """
    configs = configs if configs is not None else [*practice_configs(flavour), APP_FACTS]
    platform = platform or native_platform()
    before = set(docker("volume", "ls", "-q").split())
    command = [tool("container-structure-test"), "test", "--no-color", "--image", image, "--platform", platform,
               *(arg for config in configs for arg in ("--config", str(config)))]  # fmt: skip
    timeout = TIMEOUT[platform == native_platform()]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout)
        # Once, on a loaded engine, a command test's container ran and container-structure-test read
        # nothing of its output (`id -g` printed '' right after `id -u` printed 5678: CI, 2026-12-07).
        # That one signature reruns every check once; a command that really prints nothing fails twice.
        if result.returncode != 0 and "not found in output ''" in result.stdout:
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout)
        return result
    finally:
        # Only anonymous volumes (a 64-hex name: the image's VOLUME /data in each check's container).
        # A named one left dangling meanwhile is another test's, between two of its own runs: CI's
        # fresh run of 2026-12-08 lost workshop step 6's `workshop-data` this way.
        dangling = docker("volume", "ls", "-q", "--filter", "dangling=true").split()
        left = {name for name in dangling if ANONYMOUS.fullmatch(name)} - before
        if left:
            docker("volume", "rm", *sorted(left), check=False)
