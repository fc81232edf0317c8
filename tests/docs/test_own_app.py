"""docs/own-app.md, followed word for word on another app: the container assets carry over.

The page is the one list of steps. This test reads its commands and diffs from the page itself and
applies them, in a temporary project, to greeter (tests/docs/own_app: a Starlette service with an
app factory, its dependencies in a pyproject.toml and no SQLAlchemy), with this repository beside it
as `shortener`, as the page tells a reader to clone it, and as a clone that has been used: with the
bytecode that importing container/*.py writes. Then the image is built, and must keep every
practice that container/structure/practices.yaml and the base's config check, run hardened as 5678,
turn healthy, and stop on SIGTERM within 2 s with exit code 0.
"""

import os
import py_compile
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.dockerfiles import IMAGES, instructions
from tests.helpers.engine import base_available, build, docker, running, wait_for_health_status
from tests.helpers.repo import ROOT, tool, tracked_files
from tests.helpers.structure import structure_test

PAGE = ROOT / "docs" / "own-app.md"
APP = ROOT / "tests" / "docs" / "own_app"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# The line a reader sees above a diff ("In `Dockerfile.slim` and `Dockerfile.alpine`:") or above a
# file's contents ("Write `container/structure/greeter.yaml`:"), naming the files the block is for.
FOR_FILES = re.compile(r"^(?:In|Write) (`[^`]+`(?:,? (?:and )?`[^`]+`)*):$")


@dataclass(frozen=True)
class Step:
    """One `###` edit of the page (or its copy section): the why, and its blocks in order."""

    title: str
    why: str
    blocks: list[tuple[str, list[str], str]]  # (sh, diff or a file's language; the files it is for; its text)


def section(text: str, heading: str) -> str:
    [body] = [part for part in re.split(r"^## ", text, flags=re.MULTILINE) if part.startswith(heading + "\n")]
    return body


def steps() -> list[Step]:
    """The page's copy section, then each of its edits, as the page writes them."""
    text = PAGE.read_text()
    parts = [("Copy the files", "", section(text, "Copy the files"))]
    for edit in re.split(r"^### ", section(text, "The edits"), flags=re.MULTILINE)[1:]:
        title, _, body = edit.partition("\n")
        why = re.search(r"^Why: (.+?)(?:\n\n|\Z)", body, re.MULTILINE | re.DOTALL)
        parts.append((title, why[1] if why else "", body))
    return [Step(title, why, blocks(body)) for title, why, body in parts]


def blocks(text: str) -> list[tuple[str, list[str], str]]:
    """Each fenced block, with the files named on the last line of text before it."""
    found, end = [], 0
    for block in BLOCK.finditer(text):
        lines = text[end : block.start()].strip().splitlines()
        named = FOR_FILES.match(lines[-1]) if lines else None
        found.append((block[1], re.findall(r"`([^`]+)`", named[1]) if named else [], block[2]))
        end = block.end()
    return found


def apply_diff(path: Path, diff: str, where: str) -> None:
    """The diff's `-` and context lines, found once in `path`, become its `+` and context lines."""
    lines = diff.splitlines()
    old = "".join(line[1:] + "\n" for line in lines if line[:1] in (" ", "-"))
    new = "".join(line[1:] + "\n" for line in lines if line[:1] in (" ", "+"))
    text = path.read_text()
    assert text.count(old) == 1, (
        f"{where}: {path.name} does not hold these lines exactly once:\n{old}"
        f"The file's wording changed: update docs/own-app.md to it."
    )
    path.write_text(text.replace(old, new))


def follow_the_page(project: Path) -> None:
    """Every block of the page, in order, from the project's root: sh is run, a diff is applied to the
    files its first line names, and any other block that names one file is that file's contents."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("UV_")}
    # uv as the page says to get it (`pip install uv`): the dev requirements have it. No uv.toml of this machine.
    env |= {"PATH": f"{Path(tool('uv')).parent}{os.pathsep}{env['PATH']}", "UV_NO_CONFIG": "1"}
    for step in steps():
        where = f"docs/own-app.md, {step.title}"
        for kind, files, text in step.blocks:
            if kind == "sh":
                result = subprocess.run(["sh", "-ec", text], cwd=project, env=env, capture_output=True, text=True,
                                        timeout=300, check=False)  # fmt: skip
                assert result.returncode == 0, f"{where}: `{text.strip()}` failed:\n{result.stderr[-2000:]}"
            elif kind == "diff":
                assert files, f"{where}: a diff without a line above it that names its files (In `...`:)"
                for name in files:
                    apply_diff(project / name, text, where)
            else:
                assert len(files) == 1, f"{where}: a {kind} block without a line above it that names its file"
                (project / files[0]).parent.mkdir(parents=True, exist_ok=True)
                (project / files[0]).write_text(text)


def clone_beside(folder: Path) -> None:
    """This repository in `folder` as `shortener`, as the page tells a reader to clone it, and as a
    clone that has been used: its container/ holds the bytecode that importing its .py files leaves
    there (this suite's tests do), whether or not this checkout's own does at the time. The rest is
    this checkout itself; container/ is a copy of it, so nothing is written into the checkout."""
    clone = folder / "shortener"
    clone.mkdir()
    for entry in ROOT.iterdir():
        if entry.name != "container":
            (clone / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "container", clone / "container")
    for source in (clone / "container").rglob("*.py"):
        cache = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        py_compile.compile(str(source), cfile=str(cache), doraise=True)


def written_by_the_page() -> set[str]:
    """The files the page writes whole (a block under "Write `...`:"), relative to the project."""
    return {files[0] for step in steps() for kind, files, _ in step.blocks if kind not in ("sh", "diff")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """greeter after every step of the page, with this repository beside it as `shortener`."""
    folder = tmp_path_factory.mktemp("own-app")
    clone_beside(folder)
    project = folder / "greeter"
    shutil.copytree(APP, project, ignore=shutil.ignore_patterns("__pycache__", "README.md"))
    follow_the_page(project)
    return project


def test_the_page_moves_an_app_in_fewer_than_ten_edits_each_with_its_why() -> None:
    copy, *edits = steps()
    assert copy.blocks and [kind for kind, _, _ in copy.blocks] == ["sh"]
    assert 0 < len(edits) < 10
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for page in (PAGE, ROOT / "README.md"):
        assert f"make {words[len(edits) - 1]} edits" in page.read_text(), f"{page.name} counts the edits wrong"
    for edit in edits:
        assert edit.blocks, f"{edit.title}: no command or diff"
        assert len(edit.why.split()) >= 8, f"{edit.title}: no line on why"


def test_the_page_copies_the_files_this_repository_holds_and_no_cache(project: Path) -> None:
    """container/ after the page is this repository's container/ as git tracks it, plus the files the
    page writes: none of the bytecode, or anything else, that running the clone left in its copy."""
    tracked = {name for name in tracked_files() if name.startswith("container/") and (ROOT / name).is_file()}
    expected = tracked | {name for name in written_by_the_page() if name.startswith("container/")}
    adopted = {str(path.relative_to(project)) for path in (project / "container").rglob("*") if path.is_file()}
    carried, missing = sorted(adopted - expected), sorted(expected - adopted)
    assert carried == [], f"the page's copy carried files this repository does not hold: {carried}"
    assert missing == [], f"the page's copy left out files of container/: {missing}"
    for name in ("Dockerfile.slim", "Dockerfile.alpine", ".dockerignore"):
        assert (project / name).is_file(), f"the page's copy left out {name}"


def test_after_the_page_nothing_the_images_read_names_this_app(project: Path) -> None:
    """The edits are complete: no instruction, and no line of the allow-list, still names shortener_app."""
    for dockerfile in IMAGES.values():
        named = [line for line in instructions(str(project / dockerfile)) if "shortener" in line]
        assert named == [], f"{dockerfile} still names this app after the page's edits: {named}"
    assert "shortener" not in (project / ".dockerignore").read_text()
    lock = (project / "requirements.txt").read_text()
    assert "--hash=sha256:" in lock
    assert re.search(r"^starlette==", lock, re.M) and re.search(r"^uvicorn==", lock, re.M), "the lock lacks the server"
    assert not re.search(r"^(fastapi|sqlalchemy|pydantic)==", lock, re.M)
    copied = [project / name for name in (*IMAGES.values(), ".dockerignore")] + [
        path for path in (project / "container").rglob("*") if path.is_file()
    ]
    left = [f"{path.relative_to(project)}: {line.strip()}" for path in copied
            for line in path.read_text().splitlines() if "shortener" in line.lower()]  # fmt: skip
    assert left == [], f"the sample is still named in the adopted files: {left}"


def test_the_leftover_check_fails_on_files_only_copied(tmp_path: Path) -> None:
    """The page's last edit is a check that can fail: on the files as copied, before any edit, it does."""
    *_, last = steps()
    [command] = [text for kind, _, text in last.blocks if kind == "sh"]
    clone_beside(tmp_path)
    project = tmp_path / "greeter"
    project.mkdir()
    copy = [text for kind, _, text in steps()[0].blocks if kind == "sh"]
    for text in copy:
        subprocess.run(["sh", "-ec", text], cwd=project, check=True)
    result = subprocess.run(["sh", "-c", command], cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "shortener_app" in result.stdout, result.stdout + result.stderr


def test_after_the_page_hadolint_finds_nothing_in_either_dockerfile(project: Path) -> None:
    """With the copied container/hadolint.yaml: every finding fails, and a missing label or HEALTHCHECK is one."""
    result = subprocess.run([tool("hadolint"), "--no-color", "--config", "container/hadolint.yaml", *IMAGES.values()],
                            cwd=project, capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.fixture(scope="module", params=list(IMAGES))
def greeter_image(request: pytest.FixtureRequest, project: Path, docker_engine: None) -> Iterator[tuple[str, str]]:
    flavour = request.param
    if reason := base_available(flavour):
        pytest.skip(reason)
    tag = f"greeter-test:{flavour}"
    build(str(project / IMAGES[flavour]), tag, context=project)
    yield tag, flavour
    docker("image", "rm", "-f", tag, check=False)


@pytest.mark.docker
def test_the_practices_hold_for_another_app(greeter_image: tuple[str, str], project: Path) -> None:
    tag, flavour = greeter_image
    structure = project / "container" / "structure"
    # The practices, the base's own, and the config of the app's own facts that the page wrote.
    copied = {"practices.yaml", *(f"{name}.yaml" for name in IMAGES)}
    own = [config for config in structure.glob("*.yaml") if config.name not in copied]
    assert own, "the page wrote no config of the app's own facts"
    configs = [structure / "practices.yaml", structure / f"{flavour}.yaml", *own]
    result = structure_test(tag, flavour, configs=configs)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failures:    0" in result.stdout and "Passes:      0" not in result.stdout


@pytest.mark.docker
def test_another_app_runs_hardened_as_5678_and_writes_only_to_data(greeter_image: tuple[str, str]) -> None:
    tag, _ = greeter_image
    with running(tag, migrate=False) as container, httpx.Client(base_url=container.url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.post("/hello/Ada").text == "Hello, Ada! 0 guests before you."
        assert client.post("/hello/Grace").text == "Hello, Grace! 1 guests before you."
        assert docker("exec", container.name, "id", "-u").strip() == "5678"
        config = docker("inspect", "-f", "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} "
                        "{{.HostConfig.SecurityOpt}}", container.name).strip()  # fmt: skip
        assert config == "true [ALL] [no-new-privileges]"
        assert docker("exec", container.name, "cat", "/data/guests.txt") == "Ada\nGrace\n"
        assert docker("diff", container.name).strip() == "", "the container wrote outside /data and /tmp"


@pytest.mark.docker
def test_docker_reports_another_app_healthy(greeter_image: tuple[str, str]) -> None:
    tag, _ = greeter_image
    with running(tag, migrate=False) as container:
        wait_for_health_status(container.name)
        assert container.state()["Health"]["FailingStreak"] == 0


@pytest.mark.docker
def test_another_app_stops_on_sigterm_within_2_s_with_exit_0(greeter_image: tuple[str, str]) -> None:
    tag, _ = greeter_image
    with running(tag, migrate=False) as container:
        exit_code, took = container.stop()
    assert exit_code == 0 and took < 10, f"exit code {exit_code} after {took:.1f} s: Docker waited out its stop timeout"


@pytest.mark.docker
def test_another_app_exits_0_on_sigterm_behind_an_init_too(greeter_image: tuple[str, str]) -> None:
    """`docker run --init`, compose's `init: true`: the server is not PID 1, and plain uvicorn would exit 143."""
    tag, _ = greeter_image
    with running(tag, extra=("--init",), migrate=False) as container:
        exit_code, _ = container.stop()
    assert exit_code == 0, f"exit code {exit_code} after a clean shutdown behind an init"
