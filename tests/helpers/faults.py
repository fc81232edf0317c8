"""Faults a test brings about: a lock held by another process, a full disk; and what it reads back."""

import contextlib
import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .required import unavailable


class SqliteLock:
    """BEGIN EXCLUSIVE on a SQLite file, held by another process until `release()`."""

    def __init__(self, db: Path) -> None:
        script = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)

    def __enter__(self) -> "SqliteLock":
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def rss_mib(pid: int) -> float:
    """A process's resident memory now."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def sqlite_clicks(db: Path, key: str) -> int:
    with sqlite3.connect(db) as connection:
        (clicks,) = connection.execute("SELECT clicks FROM short_urls WHERE key = ?", (key,)).fetchone()
    connection.close()
    return int(clicks)


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` (root only); skips, or fails with REQUIRE_TMPFS=1, where it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()[:200]}", "REQUIRE_TMPFS")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path) -> Path:
    """Write a file into `folder` until its file system is full; return it (delete it to free the space)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as sink:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    sink.write(b"\0" * size)
    return filler


def note(text: str) -> None:
    """A measurement worth reading in the run's output: `pytest -o log_cli=true --log-cli-level=INFO`."""
    logging.getLogger("tests.numbers").info(text)
