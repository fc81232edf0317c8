"""The workshop's steps (docs/workshop/steps): each one builds, and shows the one thing it teaches.

The steps are built from a copy of the repository with the junk a working copy gathers (.git,
.venv, .env, a local database), so the naive steps show what a missing .dockerignore lets in.
"""

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .docker_support import build, docker, present_or_pulled, running, wait_for_health_status
from .support import ROOT, with_code_change, working_copy

pytestmark = pytest.mark.docker

STEPS = ROOT / "docs" / "workshop" / "steps"
JUNK = {".git/config": "[core]", ".venv/pyvenv.cfg": "home = /usr/bin", ".env": "SECRET_KEY=do-not-ship",
        "shortener.db": "SQLite format 3"}  # fmt: skip


def workspace(folder: Path, *, dockerignore: bool) -> Path:
    """A working copy with junk; with or without the repository's .dockerignore."""
    return working_copy(folder, JUNK, dockerignore=dockerignore)


class Workshop:
    def __init__(self, root: Path) -> None:
        self.naive = workspace(root / "naive", dockerignore=False)
        self.ignored = workspace(root / "ignored", dockerignore=True)
        self.built: dict[str, str] = {}

    def image(self, step: str, *, base_only_matters_for_size: bool = False) -> str:
        """The step's image. Where its base cannot be had and the lesson does not depend on the base
        (what step 1 copies, and as whom it runs), it is built on python:3.13-slim instead."""
        if step not in self.built:
            text = (STEPS / step / "Dockerfile").read_text()
            base = text.split("FROM ", 1)[1].split()[0]
            if not present_or_pulled(base):
                if not (base_only_matters_for_size and present_or_pulled("python:3.13-slim")):
                    pytest.skip(f"{base} is not local and no registry answers")
                text = text.replace(f"FROM {base}\n", "FROM python:3.13-slim\n", 1)
            context = self.naive if step < "3" else self.ignored
            tag = f"shortener-workshop:{step}"
            build(None, tag, text=text, context=context)
            self.built[step] = tag
        return self.built[step]

    def run(self, step: str, *command: str) -> str:
        return docker("run", "--rm", "--entrypoint", command[0], self.image(step), *command[1:]).strip()


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Workshop:
    return Workshop(tmp_path_factory.mktemp("workshop"))


def size(image: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image))


def test_step_1_naive_ships_the_working_copy_and_runs_as_root(workshop: Workshop) -> None:
    workshop.image("1-naive", base_only_matters_for_size=True)
    listing = workshop.run("1-naive", "ls", "-a", "/app")
    assert ".git" in listing and ".env" in listing and "shortener.db" in listing
    assert workshop.run("1-naive", "id", "-u") == "0"


def test_step_2_slim_base_drops_the_toolchain_and_the_size(workshop: Workshop) -> None:
    assert workshop.run("2-slim-base", "sh", "-c", "command -v gcc || echo none") == "none"
    if present_or_pulled("python:3.13"):  # the size lesson needs the real full image
        assert size(workshop.image("2-slim-base")) < size(workshop.image("1-naive")) / 2


def test_step_3_dockerignore_keeps_the_working_copy_out(workshop: Workshop) -> None:
    before = workshop.run("2-slim-base", "ls", "-a", "/app").split()
    after = workshop.run("3-dockerignore", "ls", "-a", "/app").split()
    assert {".git", ".env", ".venv", "shortener.db"} <= set(before)
    assert not {".git", ".env", ".venv", "shortener.db"} & set(after)


def _dependency_layer_survives_a_code_change(workshop: Workshop, step: str, tmp_path: Path) -> bool:
    """Whether BuildKit reuses the `pip install` step after one app file changes."""
    workshop.image(step)
    edited = with_code_change(workshop.ignored, tmp_path / "edited")
    tag = f"shortener-workshop:{step}-edited"
    result = subprocess.run(
        ["docker", "buildx", "build", "--load", "--progress=plain", "-t", tag, "-f", "-", str(edited)],
        input=(STEPS / step / "Dockerfile").read_text(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    docker("image", "rm", "-f", tag, check=False)
    install = re.search(r"^(#\d+) \[.*\] RUN pip install", result.stderr, re.MULTILINE)
    assert install, result.stderr[-2000:]
    return f"{install.group(1)} CACHED" in result.stderr


def test_step_4_dependencies_first_survive_a_code_change(workshop: Workshop, tmp_path: Path) -> None:
    assert not _dependency_layer_survives_a_code_change(workshop, "3-dockerignore", tmp_path)
    assert _dependency_layer_survives_a_code_change(workshop, "4-dependencies-first", tmp_path / "4")
    assert workshop.run("4-dependencies-first", "sh", "-c", "ls /root/.cache/pip 2>/dev/null || echo none") == "none"


PYTHON_FLAGS = "import sys; print(sys.flags.dont_write_bytecode, sys.stdout.write_through)"


def test_step_5_python_env_vars_take_effect(workshop: Workshop) -> None:
    assert workshop.run("4-dependencies-first", "python", "-c", PYTHON_FLAGS) == "0 False"
    assert workshop.run("5-python-env", "python", "-c", PYTHON_FLAGS) == "1 True"


def test_step_6_runs_as_5678_and_cannot_change_its_code(workshop: Workshop) -> None:
    assert workshop.run("6-non-root", "id", "-u") == "5678"
    writable = workshop.run("6-non-root", "sh", "-c", "find /app -writable; echo end")
    assert writable == "end"


def test_step_7_reports_healthy_and_stops_cleanly(workshop: Workshop) -> None:
    with running(workshop.image("7-healthcheck")) as container:
        wait_for_health_status(container.name)
        docker("stop", container.name)
        assert container.state()["ExitCode"] == 0


@pytest.mark.parametrize("step", sorted(path.name for path in STEPS.iterdir()))
def test_every_step_has_a_test(step: str) -> None:
    tests: list[Callable[..., None]] = [value for name, value in globals().items() if name.startswith("test_step_")]
    assert any(f"test_step_{step[0]}_" in test.__name__ for test in tests)
