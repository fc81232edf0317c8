"""Helpers the tests share: required-or-skip, free ports, a real uvicorn server."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def required(flag: str) -> bool:
    return os.environ.get(flag, "") not in ("", "0")


POSTGRES_HINT = (
    "no PostgreSQL server: apt-get install postgresql (Debian/Ubuntu; `make test` then starts a throwaway "
    "server with scripts/with-test-postgres), or set TEST_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1:port/db"
)

# How to get what each REQUIRE_... flag stands for, added to a skip whose reason does not say how
# (does not mention an install already).
HOW_TO_GET = {
    "REQUIRE_DOCKER": "install Docker Engine 25+ with buildx and compose (Docker Desktop; "
    "on Debian 12, scripts/install-docker-tools)",
    "REQUIRE_POSTGRES": "apt-get install postgresql (scripts/with-test-postgres starts a throwaway server)",
    "REQUIRE_BROWSER": "apt-get install chromium, or set CHROMIUM_PATH",
    "REQUIRE_NODE": "install Node.js 18+ with npm (apt-get install nodejs npm), then run make test again",
}


def unavailable(reason: str, flag: str) -> NoReturn:
    """Skip, saying why and how to get what is missing; fail instead when `flag` (e.g. REQUIRE_DOCKER=1) is set."""
    how = HOW_TO_GET.get(flag)
    if how and "install" not in reason:
        reason = f"{reason}; to run it: {how}"
    if required(flag):
        pytest.fail(f"{reason} (and {flag}=1 says it must run)")
    pytest.skip(f"{reason} ({flag}=1 makes this a failure)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, seconds: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it answered")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer 200 within {seconds} s")


class Server:
    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def stop(self) -> int:
        """SIGTERM, as `docker stop` sends it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def uvicorn_server(env: dict[str, str], log: Path, *extra: str, port: int | None = None) -> Iterator[Server]:
    """The server as the image starts it (`python -m shortener_app`), in a child process on a loopback port."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "shortener_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(url, process, log)
    try:
        wait_until_healthy(url, process=process)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


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
    with (edited / "shortener_app" / "routes.py").open("a") as routes:
        routes.write(f"\n# a code-only change {uuid.uuid4()}\n")
    return edited


# --- Faults: the image's server flags, a lock held by another process, a process's memory ---


def image_server_flags(dockerfile: str = "Dockerfile.slim") -> list[str]:
    """The uvicorn flags of the image's CMD, minus --host and --port: run locally as in the image."""
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("CMD ["))
    command = json.loads(line.removeprefix("CMD "))
    flags, rest = [], command[next(i for i, word in enumerate(command) if word.startswith("--")) :]
    while rest:
        flag, *rest = rest
        if flag in ("--host", "--port"):
            rest = rest[1:]
        else:
            flags.append(flag)
    return flags


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
    import logging

    logging.getLogger("tests.numbers").info(text)
