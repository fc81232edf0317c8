"""The workshop (docs/workshop/steps/NN-name/README.md): every command on every page runs, and prints
what the page shows.

The pages run in order, from the repository root of a throwaway clone that has the junk a working
copy gathers (.env, a local database), as attendees run them. Each command's output (stdout and
stderr together) must contain the lines the page shows under it, in that order, BuildKit's step
numbers and timestamps aside. The page's diff must be the diff between the step's files, so the
steps lead to Dockerfile.slim itself. docs/workshop/pages.py reads the pages.
"""

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.dockerfiles import HADOLINT
from tests.helpers.engine import present_or_pulled
from tests.helpers.repo import ROOT, tool, working_copy
from tests.helpers.workshop import pages

STEPS = pages.STEPS
PAGE_NAMES = [page.parent.name for page in pages.PAGES]
JUNK = {".env": "SECRET_KEY=do-not-ship\n", "shortener.db": ""}
SECTIONS = ("## Goal", "## The change", "## Do it", "## Break it", "## Recap")
# Lines a shown output may differ in from run to run: BuildKit's "#12 " and "#12 0.345 " prefixes.
VOLATILE = re.compile(r"^#\d+ (\d+\.\d+ )?")
# A bound for the prefetch, which builds every step once (a fresh build cache on a busy machine).
PREFETCH_SECONDS = 1800
COMMAND_SECONDS = 300
HINTS = {"python:3.13": "without a registry, .ci/make-standin-full builds a labelled stand-in"}
# Variables compose.yaml reads: the pages run with its defaults, whatever the caller's shell has.
COMPOSE_SETTINGS = {
    "PORT",
    "FLAVOUR",
    "BASE_URL",
    "WITH_POSTGRES",
    "SHORTENER_DB_URL",
    "COMPOSE_PROFILES",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_FILE",
}


def workspace(folder: Path) -> Path:
    """A clone of the repository's tracked files (a git repository, so `git checkout` undoes an
    exercise), plus the junk of a working copy. The root .dockerignore is there, as in any clone."""
    working_copy(folder, JUNK)
    git = ["git", "-c", "user.name=workshop", "-c", "user.email=workshop@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "workshop"], cwd=folder, check=True)
    return folder


def normalised(line: str) -> str:
    return VOLATILE.sub("", line.strip())


def matches(shown: str, actual: str) -> bool:
    """A shown line is the actual line; one ending in "..." is the start of it."""
    if shown.endswith("..."):
        return actual.startswith(shown[:-3].rstrip())
    return shown == actual


def missing_lines(shown: list[str], output: str) -> list[str]:
    """The shown lines not found in `output`, in order. Without a "..." line among them, the shown
    lines are the whole output, line for line; "..." stands for lines the page leaves out."""
    actual = [line for line in (normalised(line) for line in output.splitlines()) if line]
    expected = [line for line in (normalised(line) for line in shown) if line]
    if "..." not in expected:
        if len(expected) != len(actual) or not all(map(matches, expected, actual)):
            return [f"exactly these lines: {expected}"]
        return []
    position, missing = 0, []
    for line in expected:
        if line == "...":
            continue
        found = next((i for i in range(position, len(actual)) if matches(line, actual[i])), None)
        if found is None:
            missing.append(line)
        else:
            position = found + 1
    return missing


def run(command: str, cwd: Path, timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in COMPOSE_SETTINGS}
    env["PATH"] = f"/usr/local/sbin:{env.get('PATH', '')}"
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)  # fmt: skip


CREATED = {"container": r"--name (\S+)", "volume": r"-v ([\w.-]+):/", "image": r"-t (workshop:\S+)"}


def names_on_pages(kind: str) -> set[str]:
    """The containers, named volumes or images the pages create, for the cleanup."""
    return {name for page in pages.PAGES for name in re.findall(CREATED[kind], page.read_text())}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[Path]:
    folder = workspace(tmp_path_factory.mktemp("workshop") / "shortener")
    try:
        # The day before, as the facilitator's page asks: the bases, and every step built once.
        # It builds all 15 steps: on a fresh machine, beside the other test files, that is minutes.
        prefetched = run("docs/workshop/prefetch", folder, timeout=PREFETCH_SECONDS)
        assert prefetched.returncode == 0, prefetched.stdout[-3000:]
        yield folder
    finally:
        remove_what_the_pages_made(folder)


def remove_what_the_pages_made(folder: Path) -> None:
    """The pages' containers, compose project, volumes and images. BuildKit keeps its cache apart from
    the images: the next run still builds from cache."""
    for name in names_on_pages("container"):
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
    subprocess.run(["docker", "compose", "-p", "workshop", "down", "-v"], cwd=folder, capture_output=True,
                   check=False)  # fmt: skip
    for name in names_on_pages("volume"):
        subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "image", "rm", *sorted(names_on_pages("image"))], capture_output=True, check=False)


@contextmanager
def port_8000(needed: bool) -> Iterator[None]:
    """Port 8000 on 127.0.0.1 is shared with other users of this machine (compose.yaml's default):
    held, for a page that publishes it, under the lock every user of it takes."""
    if not needed:
        yield
        return
    with Path("/tmp/port8000.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def downloading_steps(build_output: str) -> list[str]:
    """The RUN instructions that install (pip, apt-get) and ran, rather than coming from the cache."""
    installs = dict(re.findall(r"^#(\d+) \[[^\]]*\] (RUN .*(?:pip|apt-get) .*)$", build_output, flags=re.MULTILINE))
    cached = set(re.findall(r"^#(\d+) CACHED$", build_output, flags=re.MULTILINE))
    return [command for number, command in installs.items() if number not in cached]


def test_the_download_check_tells_an_install_that_ran_from_one_that_came_from_the_cache() -> None:
    output = """#7 [build 2/4] RUN apt-get update && apt-get install -y binutils
#7 CACHED
#8 [build 3/4] RUN --mount=type=bind,source=requirements.txt,target=/tmp/r python -m pip install -r /tmp/r
#8 0.912 Collecting fastapi==0.115.0
#9 [stage-1 2/3] RUN groupadd --gid 5678 app
"""
    assert downloading_steps(output) == [
        "RUN --mount=type=bind,source=requirements.txt,target=/tmp/r python -m pip install -r /tmp/r"
    ]


@pytest.mark.docker
def test_after_the_prefetch_no_step_downloads_what_it_installs(clone: Path) -> None:
    """What makes the room's network enough (make workshop measures the bytes): every install of every
    step, the reference and its PostgreSQL variant come from the build cache the prefetch filled."""
    builds = [
        f"-f {dockerfile.relative_to(clone)}"
        for dockerfile in sorted((clone / STEPS.relative_to(ROOT)).glob("*/Dockerfile"))
    ]
    builds += ["-f Dockerfile.slim", "-f Dockerfile.slim --build-arg WITH_POSTGRES=1"]
    ran = {}
    for build in builds:
        result = run(f"docker buildx build --progress=plain {build} .", clone)
        assert result.returncode == 0, result.stdout[-3000:]
        ran[build] = downloading_steps(result.stdout)
    assert not any(ran.values()), ran


@pytest.mark.docker
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_command_on_the_page_prints_what_the_page_shows(name: str, clone: Path) -> None:
    text = (STEPS / name / "README.md").read_text()
    with port_8000("docker compose" in text):
        skipped = run_page(name, text, clone)
    if skipped:
        skipped = sorted(set(skipped))
        hints = "".join(f" ({HINTS[image]})" for image in skipped if image in HINTS)
        pytest.skip(f"every other command ran as shown; not here, so not run: the blocks needing {skipped}{hints}")


def run_page(name: str, text: str, clone: Path) -> list[str]:
    """Runs the page's commands; returns the images whose blocks could not run here."""
    skipped = []
    for block in pages.console_blocks(text):
        if block.needs and not present_or_pulled(block.needs):
            skipped.append(block.needs)
            continue
        for number, command in enumerate(block.commands, 1):
            result = run(command.line, clone)
            expect_failure = block.fails and number == len(block.commands)
            where = f"{name}: `{command.line}` exited {result.returncode}"
            assert (result.returncode != 0) == expect_failure, f"{where}\n{result.stdout[-3000:]}"
            if not command.shown:  # the page shows no output: the command need only succeed
                continue
            if command.shown == ["(nothing)"]:
                assert result.stdout.strip() == "", f"{where}, printing what the page says it does not: {result.stdout}"
                continue
            missing = missing_lines(command.shown, result.stdout)
            assert not missing, f"{where}; the page shows lines it did not print: {missing}\n{result.stdout[-3000:]}"
    return skipped


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_the_page_has_every_section_and_a_two_line_recap(name: str) -> None:
    text = (STEPS / name / "README.md").read_text()
    positions = [text.find(section) for section in SECTIONS]
    assert -1 not in positions, f"{name}: missing {[s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]}"
    assert positions == sorted(positions), f"{name}: the sections are not in the order {SECTIONS}"
    recap = [line for line in text.split("## Recap", 1)[1].strip().splitlines() if line.strip()]
    assert len(recap) == 2, f"{name}: the recap has {len(recap)} lines, not two"
    assert pages.console_blocks(text.split("## Break it", 1)[1]), f"{name}: the exercise has no command to run"


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_the_page_shows_the_change_from_the_step_before(name: str) -> None:
    text = (STEPS / name / "README.md").read_text()
    before, after = pages.CHANGES[name]
    if before is None:
        shown = (pages.fenced(text, "dockerfile") or pages.fenced(text, "yaml"))[0].splitlines()
        lines = (ROOT / after).read_text().splitlines()
        assert not missing_lines(shown, "\n".join(lines)), f"{name}: the page shows lines that {after} lacks"
        return
    assert pages.fenced(text, "diff") == [pages.expected_diff(before, after)], (
        f"{name}: the page's diff is not the diff from {before} to {after}; "
        "read the new one (python docs/workshop/pages.py writes it) and make the page say it"
    )


def test_every_step_folder_has_a_page_and_a_change() -> None:
    folders = sorted(path.name for path in STEPS.iterdir() if path.is_dir())
    assert folders == PAGE_NAMES == list(pages.CHANGES)


def test_steps_1_and_2_bring_their_own_ignore_file_and_later_steps_use_the_root_one() -> None:
    for name in PAGE_NAMES:
        own = (STEPS / name / "Dockerfile.dockerignore").exists()
        assert own == (name < "03"), f"{name}: Dockerfile.dockerignore {'missing' if name < '03' else 'present'}"
    guide = "\n".join(path.read_text() for path in (ROOT / "docs" / "workshop").rglob("*.md"))
    assert "mv .dockerignore" not in guide, "attendees must not have to move the repository's .dockerignore"


def hadolint_findings(dockerfile: Path) -> set[str]:
    """The rules hadolint (with the repository's container/hadolint.yaml) says the Dockerfile breaks."""
    result = subprocess.run([tool("hadolint"), "--no-color", "--config", HADOLINT, "--no-fail", str(dockerfile)],
                            cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
    return set(re.findall(r" (DL\d+|SC\d+) ", result.stdout))


def test_hadolint_finds_less_at_every_step_and_nothing_from_step_12() -> None:
    """The steps fix what the linter flags, one practice at a time, and never bring a finding back."""
    before: set[str] | None = None
    for name in PAGE_NAMES:
        dockerfile = STEPS / name / "Dockerfile"
        if not dockerfile.exists():
            continue
        findings = hadolint_findings(dockerfile)
        assert before is None or findings <= before, f"{name} brings back {sorted(findings - before)}"
        before = findings
    assert before == set(), f"the last step's Dockerfile still breaks {sorted(before or ())}"


PREFLIGHT = ROOT / "docs" / "workshop" / "preflight"
RESET = ROOT / "docs" / "workshop" / "reset"


@pytest.mark.docker
def test_the_preflight_passes_on_a_laptop_ready_for_the_workshop(docker_engine: None) -> None:
    proxy = re.search(r"^\s+image: (nginx:\S+)", (ROOT / "compose.yaml").read_text(), flags=re.MULTILINE)
    assert proxy, "compose.yaml's front door is no longer nginx: the preflight and prefetch read it so"
    for base in ("python:3.13", "python:3.13-slim", proxy.group(1)):
        if not present_or_pulled(base):
            pytest.skip(f"{base} is not here, so this machine is not ready ({HINTS.get(base, 'docker pull')})")
    result = run(f"bash {PREFLIGHT}", ROOT)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("Ready for the workshop."), result.stdout


def test_the_preflight_names_an_old_engine_and_a_missing_tool_and_how_to_fix_them(tmp_path: Path) -> None:
    """A laptop with Docker Engine 24 and no curl: each gets its line and its fix, and the exit says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\n[ "$1" = version ] && echo 24.0.7 && exit 0\nexit 1\n')
    (bin_dir / "docker").chmod(0o755)
    for tool_name in ("git", "uname", "awk", "printf"):  # what the script may use, but not curl
        found = subprocess.run(["sh", "-c", f"command -v {tool_name}"], capture_output=True, text=True).stdout.strip()
        if found.startswith("/"):
            (bin_dir / tool_name).symlink_to(found)
    result = subprocess.run(["/bin/bash", str(PREFLIGHT)], env={"PATH": str(bin_dir)}, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISSING  curl" in result.stdout
    assert "MISSING  Docker Engine 25 or later (this is 24.0.7)" in result.stdout
    assert "to fix before the workshop" in result.stdout


@pytest.mark.docker
def test_reset_brings_a_laptop_back_to_the_start_of_a_step(tmp_path: Path, docker_engine: None) -> None:
    """A laptop that fell behind at step 4, with an exercise left half done and later steps' images:
    after `reset 4`, page 4 runs exactly as shown."""
    if not present_or_pulled("python:3.13-slim"):
        pytest.skip(HINTS["python:3.13"])
    folder = workspace(tmp_path / "shortener")
    (folder / "shortener_app" / "routes.py").open("a").write("# an exercise left half done\n")
    (folder / ".env").unlink()
    subprocess.run(["docker", "tag", "python:3.13-slim", "workshop:06"], check=True)
    try:
        result = run("docs/workshop/reset 4", folder)
        assert result.returncode == 0 and "Ready for step 4" in result.stdout, result.stdout
        assert run("git status --porcelain --untracked-files=no", folder).stdout == ""
        assert (folder / ".env").read_text() == JUNK[".env"] and (folder / "shortener.db").exists()
        assert not present_or_pulled.__wrapped__("workshop:06"), "reset left a later step's image"
        assert present_or_pulled.__wrapped__("workshop:03"), "reset did not build the step before"
        with port_8000(False):
            assert run_page("04-dependencies-first", (STEPS / "04-dependencies-first" / "README.md").read_text(),
                            folder) == []  # fmt: skip
    finally:
        subprocess.run(["docker", "image", "rm", "-f", "workshop:03", "workshop:04", "workshop:06"],
                       capture_output=True, check=False)  # fmt: skip
