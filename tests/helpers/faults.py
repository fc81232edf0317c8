"""Faults a test brings about: a lock held by another process, a full disk; and what it reads back."""

import contextlib
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .required import unavailable
from .server import free_port


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


class OwnPostgres:
    """A PostgreSQL server of one test's own (never the shared one), which the test can freeze (SIGSTOP,
    what `docker pause` does), stop and start again on the same port.

    In a folder of its own under /tmp: pytest's tmp_path is private to root, and initdb runs as postgres.
    """

    def __init__(self, started: bool = True) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
        if not bins:
            unavailable("no PostgreSQL server binaries (Debian's postgresql package)", "REQUIRE_POSTGRES")
        self.bin, self.port = bins[-1], free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.folder = Path(tempfile.mkdtemp(prefix="shortener-faults-pg-"))
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            subprocess.run(["chown", "postgres:", str(self.folder)], check=True)
        subprocess.run([*self.as_owner, f"{self.bin}/initdb", "-D", str(self.folder), "-U", "postgres", "-A", "trust",
                        "--no-sync"], check=True, capture_output=True)  # fmt: skip
        self.started = started

    def start(self) -> None:
        subprocess.run([*self.as_owner, f"{self.bin}/pg_ctl", "-D", str(self.folder), "-l", f"{self.folder}/server.log",
                        "-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off", "start"],
                       check=True, capture_output=True)  # fmt: skip

    def stop(self) -> None:
        self.thaw()
        subprocess.run([*self.as_owner, f"{self.bin}/pg_ctl", "-D", str(self.folder), "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True)  # fmt: skip

    @property
    def pid(self) -> int:
        return int((self.folder / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if (self.folder / "postmaster.pid").exists():
            self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        """The postmaster and every backend it forked."""
        pid = self.pid
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for target in (pid, *map(int, found)):
            with contextlib.suppress(ProcessLookupError):  # a backend that exited since pgrep listed it
                os.kill(target, sig)

    def __enter__(self) -> "OwnPostgres":
        if self.started:
            self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
