"""The workshop's pages module (docs/workshop/pages.py), loaded from its file: docs/ is not a package."""

import importlib.util
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.repo import ROOT

_spec = importlib.util.spec_from_file_location("workshop_pages", ROOT / "docs" / "workshop" / "pages.py")
assert _spec and _spec.loader
pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pages)


def commands_on(step: str, image: str) -> list:
    """The commands step's page runs with `docker run --rm IMAGE`, each with the output it shows."""
    page = (pages.STEPS / step / "README.md").read_text()
    prefix = f"docker run --rm {image} "
    return [
        command for block in pages.command_blocks(page) for command in block.commands if command.line.startswith(prefix)
    ]


# What a shell prints when a pasted line did not run as written: an open quote (zsh's `quote>`,
# `dquote>`), a comment word taken as a command's argument or file, a glob zsh would not expand.
PASTE_ERRORS = ("quote>", "command not found", "no such file", "too many arguments", "parse error",
                "no matches found", "unexpected eof", "syntax error")  # fmt: skip
# Printed once the pasted lines have all run; the shell's echo of the command does not contain it.
PASTED = "pasted-42"


def paste_into(shell: list[str], lines: str, cwd: Path, env: dict[str, str], seconds: float = 30) -> str:
    """`lines` pasted into an interactive `shell` (its prompt, its line editor, its comment rules) in a
    terminal of its own (tmux, on a socket of its own), as an attendee pastes a block from a page; then
    a line that prints PASTED. Returns the terminal's whole text once PASTED shows, or after `seconds`."""
    socket = Path(tempfile.mkdtemp(prefix="paste")) / "tmux"  # short: a socket's path has a limit
    tmux = [shutil.which("tmux") or "tmux", "-S", str(socket)]
    command = " ".join(shlex.quote(word) for word in shell)
    subprocess.run([*tmux, "new-session", "-d", "-x", "200", "-y", "50", "-c", str(cwd), command],
                   env=env, check=True)  # fmt: skip
    try:
        time.sleep(0.5)
        for text in (lines.rstrip("\n"), "echo pasted-$((6 * 7))"):
            subprocess.run([*tmux, "send-keys", "-t", "0", "-l", text], check=True)
            subprocess.run([*tmux, "send-keys", "-t", "0", "Enter"], check=True)
        deadline = time.monotonic() + seconds
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-", "-t", "0"],
                                    capture_output=True, text=True, check=True).stdout  # fmt: skip
            if re.search(rf"^{PASTED}$", screen, re.M) or time.monotonic() > deadline:
                return screen
            time.sleep(0.25)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(socket.parent, ignore_errors=True)
