"""The workshop's step pages (docs/workshop/steps/NN-name/README.md), read as tests read them.

    python docs/workshop/pages.py        rewrite each page's diff block from the Dockerfiles

A page shows its change as a ```diff block: the unified diff from the step before, computed here
from the files themselves (CHANGES), so tests/docs/test_workshop.py can hold the page to the files.
Rewriting is for after a deliberate change to a step's Dockerfile (or to Dockerfile.slim): read
the new diff, then make the page's words say it.

Commands are ```sh blocks, written to be pasted whole into any shell (bash, or macOS's zsh, whose
interactive mode takes `#` as an argument): no `$ ` prompts, no comments, one command a line (a
trailing backslash continues one). A ```text block right after one shows what the block's last
command prints; `...` marks output left out, `(nothing)` says it prints nothing. The commands before
the last need only succeed. Words after `sh` in the fence: `fails` (the block's last command must
fail), `needs=IMAGE` (the block runs only where IMAGE is, e.g. python:3.13-alpine).
"""

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = ROOT / "docs" / "workshop" / "steps"
PAGES = sorted(STEPS.glob("[0-9][0-9]-*/README.md"))


def _step(name: str) -> str:
    return f"docs/workshop/steps/{name}/Dockerfile"


# Each page's change: (the file before, the file after); None before: the page shows the whole file.
CHANGES: dict[str, tuple[str | None, str]] = {
    "01-naive": (None, _step("01-naive")),
    "02-slim-base": (_step("01-naive"), _step("02-slim-base")),
    "03-dockerignore": (_step("02-slim-base"), _step("03-dockerignore")),
    "04-dependencies-first": (_step("03-dockerignore"), _step("04-dependencies-first")),
    "05-python-env": (_step("04-dependencies-first"), _step("05-python-env")),
    "06-non-root": (_step("05-python-env"), _step("06-non-root")),
    "07-healthcheck": (_step("06-non-root"), _step("07-healthcheck")),
    "08-hash-locked": (_step("07-healthcheck"), _step("08-hash-locked")),
    "09-build-stage": (_step("08-hash-locked"), _step("09-build-stage")),
    "10-venv-without-pip": (_step("09-build-stage"), _step("10-venv-without-pip")),
    "11-strip-and-bytecode": (_step("10-venv-without-pip"), _step("11-strip-and-bytecode")),
    "12-labels": (_step("11-strip-and-bytecode"), _step("12-labels")),
    # The last step is the reference Dockerfile itself, not a copy of it.
    "13-reference": (_step("12-labels"), "Dockerfile.slim"),
    # compose.yaml is new: the page shows the lines it explains (an excerpt, checked line by line).
    "14-compose": (None, "compose.yaml"),
    "15-slim-or-alpine": ("Dockerfile.slim", "Dockerfile.alpine"),
}


def expected_diff(before: str, after: str) -> str:
    """The unified diff between two repository files, as a page shows it."""
    lines = difflib.unified_diff(
        (ROOT / before).read_text().splitlines(), (ROOT / after).read_text().splitlines(),
        fromfile=before, tofile=after, lineterm="", n=1,
    )  # fmt: skip
    return "\n".join(lines) + "\n"


def fenced(text: str, info: str) -> list[str]:
    """The bodies of the page's code blocks whose info string starts with `info`."""
    return [m.group(2) for m in re.finditer(rf"^```{info}([^\n]*)\n(.*?)^```$", text, re.M | re.S)]


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)


@dataclass
class Block:
    commands: list[Command]
    fails: bool
    needs: str | None


# A block of commands, and the block of output right after it, if there is one.
COMMANDS = re.compile(r"^```sh([^\n]*)\n(.*?)^```\n(?:[ \t]*\n)*(?:```text\n(.*?)^```$)?", re.M | re.S)


def command_blocks(text: str) -> list[Block]:
    """The page's ```sh blocks, in order; the last command of each carries the output shown under it."""
    blocks = []
    for match in COMMANDS.finditer(text):
        words = match.group(1).split()
        needs = next((word.split("=", 1)[1] for word in words if word.startswith("needs=")), None)
        commands: list[Command] = []
        continued = False
        for line in match.group(2).splitlines():
            if continued:
                commands[-1].line += "\n" + line
            elif line.strip():
                commands.append(Command(line))
            continued = line.endswith("\\")
        if commands and match.group(3) is not None:
            commands[-1].shown = match.group(3).splitlines()
        blocks.append(Block(commands, "fails" in words, needs))
    return blocks


def rewrite_diffs() -> None:
    for page in PAGES:
        before, after = CHANGES[page.parent.name]
        if before is None:
            continue
        text = page.read_text()
        block = f"```diff\n{expected_diff(before, after)}```"
        new = re.sub(r"^```diff\n.*?^```$", lambda _, block=block: block, text, count=1, flags=re.M | re.S)
        if new != text:
            page.write_text(new)
            print(f"rewrote the diff in {page.relative_to(ROOT)}")


if __name__ == "__main__":
    rewrite_diffs()
