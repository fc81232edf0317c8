"""The repository: where it is, its tracked files, copies of it, and the tools its dev venv holds."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The sample app's package: the one folder a code change touches.
APP_PACKAGE = "shortener_app"


def tool(name: str) -> str:
    """A command-line tool from this virtual environment (installed by requirements-dev), else from PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


def tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def working_copy(folder: Path, junk: dict[str, str], *, dockerignore: bool = True) -> Path:
    """The repository's tracked files copied to `folder`, plus `junk` (path: text) a working copy gathers."""
    for name in tracked_files():
        if (ROOT / name).is_file() and (dockerignore or name != ".dockerignore"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    for name, text in junk.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def with_code_change(source: Path, folder: Path) -> Path:
    """A copy of the build context `source` with one app file changed, uniquely, so no cache matches it."""
    edited = Path(shutil.copytree(source, folder))
    with (edited / APP_PACKAGE / "routes.py").open("a") as routes:
        routes.write(f"\n# a code-only change {uuid.uuid4()}\n")
    return edited
