"""container-structure-test: the practice configs any app keeps (container/structure/), and this app's facts."""

import subprocess
from pathlib import Path

from .engine import docker
from .platforms import native_platform
from .repo import ROOT, tool

PRACTICES = ROOT / "container" / "structure"
APP_FACTS = ROOT / "tests" / "images" / "shortener.yaml"


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
