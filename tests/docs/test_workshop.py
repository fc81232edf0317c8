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
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.dockerfiles import HADOLINT
from tests.helpers.engine import present_or_pulled
from tests.helpers.repo import ROOT, tool, with_code_change, working_copy
from tests.helpers.workshop import PASTE_ERRORS, PASTED, pages, paste_into

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
def test_the_preflight_says_ready_after_the_prefetch_and_names_the_steps_a_change_would_make_download(
    clone: Path,
) -> None:
    """Before, it checked only that the bases were here: a prefetch that died at its first pip
    install, or a .venv made since (steps 1 and 2 send the whole folder to the build), still got
    "Ready". The control is the same pre-flight on the clone as the prefetch left it."""
    ready = run(f"bash {PREFLIGHT}", clone)
    assert ready.returncode == 0 and ready.stdout.rstrip().endswith("Ready for the workshop."), ready.stdout
    for line in ("the prefetch finished for this commit", "step 01's build comes from the build cache",
                 "step 02's build comes from the build cache", "a container reaches the package index"):  # fmt: skip
        assert f"ok       {line}" in ready.stdout, ready.stdout
    venv = clone / ".venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")  # what `make test` makes, in short
    try:
        changed = run(f"bash {PREFLIGHT}", clone)
    finally:
        shutil.rmtree(venv)
    assert changed.returncode == 1, changed.stdout
    for step in ("01", "02"):
        assert f"MISSING  step {step}'s build in the build cache" in changed.stdout, changed.stdout


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
    for block in pages.command_blocks(text):
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
    assert pages.command_blocks(text.split("## Break it", 1)[1]), f"{name}: the exercise has no command to run"


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


def test_the_preflight_names_an_old_engine_and_a_missing_tool_and_how_to_fix_them(tmp_path: Path) -> None:
    """A laptop with Docker Engine 24, Compose 2.20 and no curl: each gets its line and its fix, and the
    exit says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\n[ "$1" = version ] && echo 24.0.7 && exit 0\n'
                                    '[ "$1 $2" = "compose version" ] && echo 2.20.2 && exit 0\nexit 1\n')  # fmt: skip
    (bin_dir / "docker").chmod(0o755)
    for tool_name in ("git", "uname", "awk", "printf", "cksum", "cut"):  # what the script may use, but not curl
        found = subprocess.run(["sh", "-c", f"command -v {tool_name}"], capture_output=True, text=True).stdout.strip()
        if found.startswith("/"):
            (bin_dir / tool_name).symlink_to(found)
    result = subprocess.run(["/bin/bash", str(PREFLIGHT)], env={"PATH": str(bin_dir)}, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISSING  curl" in result.stdout
    assert "MISSING  Docker Engine 25 or later (this is 24.0.7)" in result.stdout
    assert "MISSING  a finished prefetch in this folder" in result.stdout, "no record of a prefetch here"
    assert "MISSING  Docker Compose 2.24.4 or later (this is 2.20.2)" in result.stdout
    assert "to fix before the workshop" in result.stdout


def test_the_preflight_and_the_tests_ask_for_the_compose_version_docs_compose_md_names() -> None:
    from tests.deploy.test_compose import COMPOSE_MINIMUM

    stated = re.search(r"Docker Compose (\d+\.\d+\.\d+) or later", (ROOT / "docs" / "compose.md").read_text())
    preflight = re.search(r"^\s*compose_minimum=(\S+)$", PREFLIGHT.read_text(), re.MULTILINE)
    assert stated and preflight, "docs/compose.md or the pre-flight no longer names the minimum"
    assert stated[1] == preflight[1] == ".".join(map(str, COMPOSE_MINIMUM))


@pytest.mark.docker
def test_reset_brings_a_laptop_back_to_the_start_of_a_step(tmp_path: Path, clone: Path) -> None:
    """A laptop that fell behind at step 4, with an exercise left half done, a file of its own and
    later steps' images: after `reset 4`, page 4 runs exactly as shown, and the edits are in git's
    stash, not lost. `reset 15` builds workshop:13, which step 15's page runs and does not build."""
    folder = workspace(tmp_path / "shortener")
    (folder / "shortener_app" / "routes.py").open("a").write("# an exercise left half done\n")
    (folder / "notes.txt").write_text("my notes\n")
    (folder / ".env").unlink()
    subprocess.run(["docker", "tag", "python:3.13-slim", "workshop:06"], check=True)
    try:
        result = run("docs/workshop/reset 4", folder)
        assert result.returncode == 0 and "Ready for step 4" in result.stdout, result.stdout
        assert "git stash pop" in result.stdout, f"reset does not say how to get the edits back: {result.stdout}"
        assert run("git status --porcelain", folder).stdout == "", "reset left edits in the working tree"
        assert "workshop reset 4" in run("git stash list", folder).stdout, "reset did not stash the edits"
        assert "an exercise left half done" in run("git stash show -p", folder).stdout, "the exercise's edit is lost"
        assert run("git show 'stash@{0}^3:notes.txt'", folder).stdout == "my notes\n", "the attendee's file is lost"
        assert (folder / ".env").read_text() == JUNK[".env"] and (folder / "shortener.db").exists()
        assert not present_or_pulled.__wrapped__("workshop:06"), "reset left a later step's image"
        with port_8000(False):
            assert run_page("04-dependencies-first", (STEPS / "04-dependencies-first" / "README.md").read_text(),
                            folder) == []  # fmt: skip
        subprocess.run(["docker", "image", "rm", "-f", "workshop:13"], capture_output=True, check=False)
        result = run("docs/workshop/reset 15", folder)
        assert result.returncode == 0 and "Ready for step 15" in result.stdout, result.stdout
        assert present_or_pulled.__wrapped__("workshop:13"), f"reset 15 did not build workshop:13: {result.stdout}"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", "workshop:03", "workshop:04", "workshop:06", "workshop:13"],
                       capture_output=True, check=False)  # fmt: skip


def images_used_before_built(page: str) -> list[str]:
    """The workshop images a page names before (or without) a `-t` that builds them: what reset builds."""
    built, used = set(), []
    for flag, name in re.findall(r"(-t )?(workshop:\d\d[a-z0-9-]*)", page):
        if flag:
            built.add(name)
        elif name not in built and name not in used:
            used.append(name)
    return used


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_the_page_says_how_to_catch_up_and_reset_can_build_what_it_uses(name: str) -> None:
    """Each page names its own reset; every image the page uses without building it is workshop:NN
    of an earlier step, which reset builds from that step's Dockerfile (13's is Dockerfile.slim)."""
    text = (STEPS / name / "README.md").read_text()
    assert f"`docs/workshop/reset {int(name[:2])}`" in text, f"{name}: the page does not say how to catch up"
    for image in images_used_before_built(text):
        number = re.fullmatch(r"workshop:(\d\d)", image)
        assert number and number.group(1) < name[:2], f"{name} uses {image}, which reset cannot build"
        folder = next(STEPS.glob(f"{number.group(1)}-*"))
        assert (folder / "Dockerfile").exists() or pages.CHANGES[folder.name][1] == "Dockerfile.slim", image


GUIDE = ROOT / "docs" / "workshop" / "README.md"
# Interactive shells as a laptop opens them, without the user's start-up files: macOS's default zsh
# (INTERACTIVE_COMMENTS off: `#` is an argument there) and bash.
SHELLS = {"zsh": ["zsh", "-f", "-i"], "bash": ["bash", "--norc", "--noprofile", "-i"]}
# A docker that answers what the prefetch and the pre-flight ask, and logs each call: the real
# prefetch builds all fifteen steps (minutes), and this test is about the shell, not the builds.
DOCKER_STUB = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
case "$1 $2" in
  "version "*) echo 27.5.1 ;;
  "compose version") echo 2.32.4 ;;
  "run "*) printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\\noverlay 1 1 50000000 1%% /\\n' ;;
esac
"""


def day_before_block() -> str:
    """The block the guide asks every attendee to paste the day before."""
    section = GUIDE.read_text().split("the day before, on a good network", 1)[1]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)
    assert block, "no sh block after 'the day before, on a good network' in docs/workshop/README.md"
    return block.group(1)


@pytest.mark.parametrize("shell", SHELLS)
def test_the_day_before_block_runs_when_pasted_into_an_interactive_shell(shell: str, tmp_path: Path) -> None:
    """Pasted into macOS's zsh (or bash) as it opens, the block runs each line as written: no line
    left open by a quote in a comment, no comment word handed to a command. Real git clones a copy
    of this repository from the block's address (git's insteadOf), the real prefetch and pre-flight
    run, against a docker that only answers."""
    for needed in ("tmux", SHELLS[shell][0]):
        if not shutil.which(needed):
            pytest.skip(f"{needed} is not installed (Debian: apt-get install zsh tmux), so nothing can paste here")
    block = day_before_block()
    [url] = re.findall(r"git clone (\S+)", block)
    origin = workspace(tmp_path / "origin")
    laptop, stubs = tmp_path / "laptop", tmp_path / "bin"
    laptop.mkdir()
    stubs.mkdir()
    (stubs / "docker").write_text(DOCKER_STUB)
    (stubs / "docker").chmod(0o755)
    calls = tmp_path / "docker-calls"
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DOCKER_CALLS": str(calls),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{origin}.insteadOf",
        "GIT_CONFIG_VALUE_0": url,
    }
    screen = paste_into(SHELLS[shell], block, laptop, env)
    errors = [error for error in PASTE_ERRORS if error in screen.lower()]
    assert not errors, f"{shell}: pasting the day-before block printed {errors}:\n{screen}"
    assert re.search(rf"^{PASTED}$", screen, re.M), f"{shell}: the pasted lines did not all run:\n{screen}"
    for line in ("Prefetched: ", "Ready for the workshop."):
        assert line in screen, f"{shell}: {line!r} missing:\n{screen}"
    called = calls.read_text().splitlines()
    # The block's docker commands, as words (a shell's comment, if the block had one, left out).
    docker_lines = [line for line in block.splitlines() if line.startswith("docker ")]
    asked = [" ".join(shlex.split(line, comments=True)[1:]) for line in docker_lines]
    assert set(asked) <= set(called), f"{shell}: docker was called {called}, not as the block says {asked}"


def pasted_blocks() -> list[tuple[str, str]]:
    """Every block of commands on the workshop's pages (the guide and each step), by page."""
    found = []
    for page in [GUIDE, *pages.PAGES]:
        name = str(page.relative_to(ROOT))
        found += [(name, match.group(2)) for match in pages.COMMANDS.finditer(page.read_text())]
    return found


def shell_words(line: str, comments: bool) -> list[str] | None:
    """The line's words as a POSIX shell splits them, with or without comments; None if a quote stays open."""
    try:
        return shlex.split(line, comments=comments)
    except ValueError:
        return None


def test_every_block_of_commands_pastes_as_written_in_zsh_and_bash() -> None:
    """Blocks are pasted whole: a `$ ` prompt or a shown output line would run as a command, and in
    macOS's interactive zsh a `# comment` is words handed to the command (its apostrophe opens a
    quote). zsh, where it is installed, parses every block (the day-before test pastes one for real)."""
    problems = []
    for name, block in pasted_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith(("$ ", "> ")):
                problems.append(f"{name}: a prompt: {line}")
            elif shell_words(line, comments=True) != shell_words(line, comments=False):
                problems.append(f"{name}: a comment, or a quote it opens: {line}")
        if shutil.which("zsh"):
            parsed = subprocess.run(["zsh", "-f", "-n", "-c", block], capture_output=True, text=True, check=False)
            if parsed.returncode or parsed.stderr:
                problems.append(f"{name}: zsh cannot parse it: {parsed.stderr.strip()}\n{block}")
    assert not problems, "\n".join(problems)


def build_of(command: str) -> str:
    """A page's `docker build ... 2>&1 | grep ...`, without the grep: the whole build output."""
    return command.split(" 2>&1 |", 1)[0]


@pytest.mark.docker
def test_step_4s_break_it_reruns_the_install_in_the_wrong_order_only(clone: Path, tmp_path: Path) -> None:
    """The break-it and its control, from the page: under the same proxy (nothing listens there, so
    nothing downloads), after the same code change, step 4's install comes from the cache and step 3's
    runs again; and the proxy alone, without the change, reruns nothing (Docker keeps proxy settings
    out of the cache keys, unlike --network=none)."""
    page = (STEPS / "04-dependencies-first" / "README.md").read_text()
    commands = [command.line for block in pages.command_blocks(page.split("## Break it", 1)[1])
                for command in block.commands]  # fmt: skip
    [control] = [build_of(line) for line in commands if "04-dependencies-first/Dockerfile" in line]
    [broken] = [build_of(line) for line in commands if "03-dockerignore/Dockerfile" in line]
    assert broken == control.replace("04-dependencies-first", "03-dockerignore").replace("workshop:04", "workshop:03")
    # Fresh clones, as the prefetch saw them (the pages leave theirs changed), one with a code change.
    unchanged = workspace(tmp_path / "unchanged")
    changed = with_code_change(unchanged, tmp_path / "changed")
    runs = {}
    conditions = {"control": (control, changed), "proxy alone": (broken, unchanged), "broken": (broken, changed)}
    for name, (build, folder) in conditions.items():
        result = run(build, folder)
        runs[name] = (result.returncode, downloading_steps(result.stdout), result.stdout[-2000:])
    assert runs["control"][:2] == (0, []), f"step 4's install did not come from the cache: {runs['control']}"
    assert runs["proxy alone"][:2] == (0, []), f"the proxy alone reran step 3's install: {runs['proxy alone']}"
    code, reran, output = runs["broken"]
    assert code != 0 and reran == ["RUN pip install -r requirements.txt"], f"step 3's install did not rerun: {output}"


@pytest.mark.docker
def test_step_10s_claim_holds_the_app_user_cannot_change_the_venv_root_could(clone: Path) -> None:
    """What step 10 says of its image, checked on the image: the venv has no pip, the app runs as
    UID 5678, which can neither write in the venv nor use the base image's pip on it; root can (the
    page's own two commands)."""
    built = run("docker build -q -t workshop:10 -f docs/workshop/steps/10-venv-without-pip/Dockerfile .", clone)
    assert built.returncode == 0, built.stdout[-3000:]
    page = (STEPS / "10-venv-without-pip" / "README.md").read_text()
    assert "docker run --rm workshop:10 python -m pip --version" in page
    user = run("docker image inspect -f '{{.Config.User}}' workshop:10", clone).stdout.strip()
    assert user == "5678:5678" and "UID 5678" in page, user
    assert run("docker run --rm workshop:10 python -m pip --version", clone).returncode != 0, "the venv has a pip"
    touched = run("docker run --rm workshop:10 touch /opt/venv/lib/python3.13/site-packages/added.pth", clone)
    assert touched.returncode != 0 and "Permission denied" in touched.stdout, touched.stdout
    lines = [command.line for block in pages.command_blocks(page) for command in block.commands]
    [as_app] = [line for line in lines if line.startswith("docker run --rm workshop:10 env")]
    [as_root] = [line for line in lines if line.startswith("docker run --rm -u 0 ")]
    assert as_root == as_app.replace("--rm workshop:10", "--rm -u 0 workshop:10"), "not the same command as root"
    app = run(as_app, clone)
    assert app.returncode != 0 and "PermissionError" in app.stdout, app.stdout[-2000:]
    root = run(as_root, clone)
    assert root.returncode == 0 and "Successfully uninstalled uvicorn" in root.stdout, root.stdout[-2000:]
