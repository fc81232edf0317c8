"""Helpers the tests share: required-or-skip, free ports, a real uvicorn server."""

import os
import shutil
import signal
import socket
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
    """`uvicorn shortener_app.main:app` in a child process on a (free) loopback port."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "shortener_app.main:app",
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
