"""`make test` on a machine that lacks what it needs says what to install, before it makes anything."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.repo import ROOT

# Stand-ins for a python3 that answers every check but one: too old, or without venv (Debian's python3
# without python3-venv has no ensurepip).
FAKES = {
    "too old": 'case "$*" in *version_info*) exit 1;; --version) echo "Python 3.9.2";; esac',
    "no venv": 'case "$*" in *ensurepip*) exit 1;; esac',
}
MESSAGES = {"too old": "needs Python 3.11 or newer", "no venv": "apt-get install python3-venv"}


@pytest.mark.parametrize("lack", FAKES)
def test_make_test_names_what_the_python_lacks(lack: str, tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\n{FAKES[lack]}\nexit 0\n")
    fake.chmod(0o755)
    for name in ("Makefile", "requirements-dev.txt", "requirements.txt", "requirements-postgres.txt",
                 "Dockerfile.slim", "pyproject.toml"):  # fmt: skip
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run(["make", "test", f"PYTHON={fake}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0 and MESSAGES[lack] in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / ".venv").exists(), "a venv was made before the check"
