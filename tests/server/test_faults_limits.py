"""What the app server itself bounds, run as the image runs it (stock uvicorn, the image's flags).

Per-client limits, head and body timeouts live in the proxy in front (container/proxy/), and
tests/deploy/test_front_door.py proves them through the real stack. Here: what stays true of the
app alone, behind any proxy or none. Every loop is bounded in count and time, on loopback.
"""

import contextlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.faults import note
from tests.helpers.server import Server, image_server_flags, uvicorn_server


def flag(name: str) -> str:
    flags = image_server_flags()
    return flags[flags.index(name) + 1]


LIMIT = int(flag("--limit-concurrency"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db", "BASE_URL": "http://short.test"}
    with uvicorn_server(env, tmp_path / "server.log", *image_server_flags()) as running_server:
        yield running_server


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_the_image_runs_stock_uvicorn_options_only() -> None:
    """No protocol class of this app's own: an adopted app keeps every limit, and a uvicorn upgrade
    cannot break one silently (a private subclass of HttpToolsProtocol did)."""
    flags = image_server_flags()
    assert "--http" not in flags and "--proxy-headers" in flags
    assert {"--limit-concurrency", "--timeout-keep-alive", "--forwarded-allow-ips"} <= set(flags)
    assert not (Path(__file__).parents[2] / "shortener_app" / "protocol.py").exists()


def test_connections_over_the_concurrency_limit_get_503_and_service_resumes(server: Server) -> None:
    """uvicorn's --limit-concurrency: past it, a request gets 503 at once instead of a queue."""
    sockets = [socket.create_connection(_address(server.url)) for _ in range(LIMIT)]
    try:
        over = httpx.get(f"{server.url}/health", timeout=5)
    finally:
        for sock in sockets:
            sock.close()
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"{server.url}/health", timeout=5)  # the closed sockets are reaped
    after = httpx.get(f"{server.url}/health", timeout=5)
    note(f"{LIMIT} open connections: the next request got {over.status_code}; after they closed, {after.status_code}")
    assert over.status_code == 503
    assert after.status_code == 200


def test_forwarded_headers_are_believed_only_from_the_proxy_networks(server: Server) -> None:
    """From 127.0.0.1 (not a private network the image trusts), X-Forwarded-For is not believed:
    the access log keeps the real peer. The compose stack shows the other half (test_front_door.py)."""
    response = httpx.get(f"{server.url}/health", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 200
    log = server.output()
    assert re.search(r"127\.0\.0\.1:\d+ - \"GET /health", log), log[-2000:]
    assert "203.0.113.7" not in log
