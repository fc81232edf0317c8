"""checkov, a well-kept scanner run offline, in a venv of its own: it pins what our dev lock cannot."""

import subprocess
import sys

from .repo import ROOT

# checkov pins packaging==23.2 (and so an older pytest, build and wheel) against our dev lock, and
# without its own pin pip-compile fell back to a two-year-old checkov: it gets a venv of its own.
CHECKOV = "checkov==3.3.30"
CHECKOV_VENV = ROOT / ".venv" / "checkov"


def checkov() -> str:
    """checkov in a venv of its own under .venv/ (created on first use)."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        install = subprocess.run([str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "-q", CHECKOV],
                                 capture_output=True, text=True, timeout=900)  # fmt: skip
        assert install.returncode == 0, f"pip install {CHECKOV} failed:\n{install.stderr[-3000:]}"
    return str(binary)
