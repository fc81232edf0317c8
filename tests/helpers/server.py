"""A real server, started as the image starts it, in a child process on a loopback port."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .dockerfiles import instructions
from .repo import ROOT

SERVE = ROOT / "container" / "serve.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A bound, not a claim: a server that answers at all answers long before it, even on a busy 2-core machine
# running the suite in 4 workers (one that exits is caught at once).
def wait_until_healthy(
    url: str, seconds: float = 60.0, process: subprocess.Popen | None = None, *, answering: bool = False
) -> None:
    """Until /health answers 200 (with `answering`: answers at all, 503 included)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it answered")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200 or answering:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/health did not answer 200 within {seconds} s")


def image_env(dockerfile: str = "Dockerfile.slim") -> dict[str, str]:
    """The image's ENV settings that start uvicorn (UVICORN_*), as the Dockerfile sets them."""
    found = {}
    for line in instructions(dockerfile):
        if line.startswith("ENV "):
            for word in shlex.split(line.removeprefix("ENV ")):
                name, _, value = word.partition("=")
                if name.startswith("UVICORN_"):
                    found[name] = value
    return found


def image_server_flags(dockerfile: str = "Dockerfile.slim") -> list[str]:
    """The uvicorn flags of the image's CMD, minus --host and --port: run locally as in the image."""
    line = next(line for line in instructions(dockerfile) if line.startswith("CMD ["))
    command = json.loads(line.removeprefix("CMD "))
    flags, rest = [], command[next(i for i, word in enumerate(command) if word.startswith("--")) :]
    while rest:
        flag, *rest = rest
        if flag in ("--host", "--port"):
            rest = rest[1:]
        else:
            flags.append(flag)
    return flags


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


def run_migrate_step(env: dict[str, str]) -> str:
    """The migrate step, as compose runs it before the app: `python -m shortener_app.migrate`, same settings."""
    result = subprocess.run(
        [sys.executable, "-m", "shortener_app.migrate"],
        cwd=ROOT, env={**os.environ, **image_env(), **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"the migrate step failed ({result.returncode}): {result.stdout}{result.stderr}")
    return result.stdout


@contextmanager
def uvicorn_server(
    env: dict[str, str], log: Path, *extra: str, port: int | None = None, migrate: bool = True, healthy: bool = True
) -> Iterator[Server]:
    """The server as the image starts it (container/serve.py, the app named by the image's UVICORN_APP).

    With `migrate`, the migrate step runs first, as compose runs it before the app."""
    if migrate:
        run_migrate_step(env)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(SERVE), "--host", "127.0.0.1", "--port", str(port), *extra]
    environment = {**os.environ, **image_env(), **env}
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(url, process, log)
    try:
        wait_until_healthy(url, process=process, answering=not healthy)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
