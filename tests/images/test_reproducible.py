"""The same commit gives the same image: two clean builds with `make image`, minutes apart, one image ID.

Measured before the Dockerfiles dated their own files (docs/practices.md#reproducible-images): 3 of 10
layers were the same, the base's. On failure this prints, layer by layer, the files that differ.
"""

import subprocess
import time
from datetime import UTC, datetime

import pytest

from tests.helpers.engine import base_available, docker
from tests.helpers.layers import differences
from tests.helpers.repo import ROOT

pytestmark = pytest.mark.docker


def make_image(tag: str) -> str:
    """`make image` as the docs say it, with every step rebuilt; the image's ID."""
    result = subprocess.run(["make", "--no-print-directory", "image", f"IMAGE={tag}", "BUILD_FLAGS=--no-cache -q"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert result.returncode == 0, f"make image failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return docker("image", "inspect", "-f", "{{.Id}}", f"{tag}:slim").strip()


def test_two_clean_builds_of_one_commit_give_the_same_image_id(docker_engine: None) -> None:
    if reason := base_available("slim"):
        pytest.skip(reason)
    tags = ["shortener-repro-a", "shortener-repro-b"]
    epoch = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True)
    try:
        first = make_image(tags[0])
        # Another second on the clock: whatever records the build's time now records another one.
        time.sleep(2)
        second = make_image(tags[1])
        if first != second:
            same, total, report = differences(f"{tags[0]}:slim", f"{tags[1]}:slim")
            pytest.fail(f"two clean builds differ: {same} of {total} layers identical\n" + "\n".join(report))
        # The image's date and its created label are the commit's, not the build's.
        commit = datetime.fromtimestamp(int(epoch.stdout), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        label = '{{index .Config.Labels "org.opencontainers.image.created"}}'
        assert docker("image", "inspect", "-f", f"{{{{.Created}}}} {label}", first).split() == [commit, commit]
    finally:
        for tag in tags:
            docker("image", "rm", "-f", f"{tag}:slim", check=False)
