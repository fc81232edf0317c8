"""What one client can take from the server: hostile input sent to a real uvicorn run with the image's flags.

The limits (shortener_app/protocol.py): 431 above MAX_HEADER_BYTES of request line plus headers,
a closed connection when no complete head arrives within HEADER_TIMEOUT_SECONDS, and connections
over MAX_CONNECTIONS closed at once. Every loop here is bounded in count and time, on loopback.
"""

import contextlib
import http.client
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from shortener_app import protocol, schema
from shortener_app.config import Settings
from shortener_app.main import create_app
from tests.helpers.engine import running
from tests.helpers.faults import note, rss_mib
from tests.helpers.server import Server, free_port, image_server_flags, uvicorn_server, wait_until_healthy

HEAD_TIMEOUT = 1.0
MAX_CONNECTIONS = 50
ATTACK_BYTES = 16 << 20
CHUNK = 64 << 10


@dataclass
class InProcess:
    """uvicorn in a thread of this process, so coverage sees the protocol; same sockets, same protocol class."""

    url: str
    uvicorn: uvicorn.Server


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    monkeypatch.setattr(protocol, "limits", lambda: protocol.Limits(32_768, HEAD_TIMEOUT, MAX_CONNECTIONS))
    settings = Settings(db_url=f"sqlite:///{tmp_path}/shortener.db", base_url="http://short.test")
    schema.upgrade(settings.db_url)  # the migrate step, as before any server
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, http=protocol.LimitedHttpTools,
                            log_level="warning", timeout_graceful_shutdown=5)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, seconds=10)
    try:
        yield InProcess(url, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {
        "DB_URL": f"sqlite:///{tmp_path}/shortener.db",
        "BASE_URL": "http://short.test",
        "HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with uvicorn_server(env, tmp_path / "server.log", *image_server_flags()) as running_server:
        yield running_server


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def send_head(url: str, prefix: bytes, filler: bytes, total: int, seconds: float = 20) -> tuple[int, bytes]:
    """Send `prefix`, then `filler` repeated up to `total` bytes, never a complete head.

    Returns how many bytes the server took before it closed, and what it answered (maybe nothing:
    a server that closes with unread bytes pending resets the connection, and the answer with it).
    """
    sent, answer = 0, b""
    with socket.create_connection(_address(url), timeout=seconds) as sock:
        with contextlib.suppress(OSError):  # reset or broken pipe: the server stopped reading
            sock.sendall(prefix)
            sent = len(prefix)
            while sent < total:
                sock.sendall(filler)
                sent += len(filler)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return sent, answer


class Prober(threading.Thread):
    """Redirects, one after another, while an attack runs; keeps the slowest answer's time."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.stop = threading.Event()
        self.slowest = 0.0
        self.answered = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            # At least 50 answers, so a quick refusal still leaves something to measure.
            while (not self.stop.is_set() or self.answered < 50) and self.answered < 100_000:
                started = time.monotonic()
                assert client.get(f"/{self.key}").status_code == 307
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.answered += 1


ATTACKS = {
    "one huge header": (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ", b"a" * CHUNK),
    "many headers": (b"GET /x HTTP/1.1\r\nHost: a\r\n", b"X-Many: b\r\n" * (CHUNK // 11)),
    "a huge request line": (b"GET /", b"a" * CHUNK),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_oversized_head_is_cut_off_with_flat_memory_and_no_stall_of_other_clients(
    server: Server, attack: str
) -> None:
    """16 MiB of head. Before: httptools took all of it, joining the pieces of a header in time
    quadratic in its size (a 64 MiB header held the loop 1.7 s), and answered as if it were fine."""
    key = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()["key"]
    httpx.get(f"{server.url}/{key}")  # cached
    before = rss_mib(server.process.pid)
    prober = Prober(server.url, key)
    prober.start()
    prefix, filler = ATTACKS[attack]
    started = time.monotonic()
    sent, answer = send_head(server.url, prefix, filler, ATTACK_BYTES)
    took = time.monotonic() - started
    prober.stop.set()
    prober.join(timeout=15)
    after = rss_mib(server.process.pid)
    note(f"{attack}: server took {sent:,} of {ATTACK_BYTES:,} bytes in {took:.2f} s, answered "
         f"{answer[:40]!r}; RSS {before:.1f} -> {after:.1f} MiB; slowest redirect meanwhile "
         f"{prober.slowest * 1000:.0f} ms of {prober.answered}")  # fmt: skip
    assert sent < ATTACK_BYTES, "the server read the whole oversized head"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert after - before < 8, f"memory grew from {before:.1f} to {after:.1f} MiB"
    assert prober.answered > 0 and prober.slowest < 0.5, f"a redirect waited {prober.slowest:.2f} s"


def test_a_head_just_over_the_cap_is_answered_431_in_json(local: InProcess) -> None:
    head = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    _sent, answer = send_head(local.url, head, b"", len(head))
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    assert b"content-type: application/json" in rest and b"larger than 32768 bytes" in rest


def test_a_head_under_the_cap_is_served(local: InProcess) -> None:
    response = httpx.get(f"{local.url}/health", headers={"X-Fine": "a" * 30_000})
    assert response.status_code == 200


def test_heads_under_the_cap_pass_even_when_one_read_brings_more_than_the_cap(local: InProcess) -> None:
    """The cap counts one request's head, not what arrives together: two pipelined requests with
    20 KB heads, then a POST whose 20 KB head comes with its 15 KB body, all in a single send."""
    pad = b"X-Pad: " + b"p" * 20_000 + b"\r\n"
    get = b"GET /health HTTP/1.1\r\nHost: a\r\n" + pad + b"\r\n"
    body = b'{"target_url": "https://example.com/"}' + b" " * 15_000
    post = (b"POST /url HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n" + pad
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)  # fmt: skip
    answer = b""
    with socket.create_connection(_address(local.url), timeout=10) as sock:
        sock.sendall(get + get + post)
        while chunk := sock.recv(65536):  # until the server closes, after the POST (Connection: close)
            answer += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"200", b"201"], answer[:300]


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes `sock` (recv gives b"" or a reset), None if it stays open."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return None
    except OSError:
        return time.monotonic() - started
    assert data == b"", data
    return time.monotonic() - started


def test_a_silent_connection_is_closed_at_the_header_timeout(server: Server) -> None:
    """Before: a socket that never sent a byte stayed open for ever (20,000 of them used up the files)."""
    with socket.create_connection(_address(server.url)) as sock:
        closed_after = _closed_within(sock, 5 * HEAD_TIMEOUT)
    note(f"a silent socket was closed after {closed_after} s (HEADER_TIMEOUT_SECONDS={HEAD_TIMEOUT})")
    assert closed_after is not None, f"still open after {5 * HEAD_TIMEOUT} s"
    assert HEAD_TIMEOUT * 0.8 <= closed_after < HEAD_TIMEOUT + 1.0


def test_a_head_trickled_byte_by_byte_is_closed_at_the_header_timeout(local: InProcess) -> None:
    """Slowloris: each byte resets no timer; the whole head must arrive within HEADER_TIMEOUT_SECONDS."""
    with socket.create_connection(_address(local.url), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        started, closed_after = time.monotonic(), None
        for _ in range(50):  # at most 5 s
            try:
                sock.sendall(b"a")
            except OSError:
                closed_after = time.monotonic() - started
                break
            if _closed_within(sock, 0.1) is not None:
                closed_after = time.monotonic() - started
                break
    note(f"a trickled head was cut off after {closed_after} s")
    assert closed_after is not None and closed_after < HEAD_TIMEOUT + 1.0


def test_a_busy_keep_alive_connection_outlives_the_header_timeout(local: InProcess) -> None:
    """The deadline is per head, not per connection: requests for 2.5 s on one socket all pass."""
    connection = http.client.HTTPConnection(*_address(local.url), timeout=5)
    try:
        connection.connect()
        sock, started, answered = connection.sock, time.monotonic(), 0
        while time.monotonic() - started < 2.5 * HEAD_TIMEOUT and answered < 10_000:
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert connection.sock is sock, "the server closed the connection"
            answered += 1
            time.sleep(0.01)
    finally:
        connection.close()
    assert answered > 10


def test_connections_over_the_bound_are_closed_at_once_and_service_resumes(server: Server) -> None:
    """Before: every connection was kept, however many; with silent ones that ends in EMFILE."""
    extra = 30
    sockets = [socket.create_connection(_address(server.url)) for _ in range(MAX_CONNECTIONS + extra)]
    try:
        time.sleep(0.3)  # well inside HEAD_TIMEOUT: only the bound can have closed any
        readable, _, _ = select.select(sockets, [], [], 0)
        refused = sum(_closed_within(sock, 0.01) is not None for sock in readable)
        open_files = len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))
        # The head timeout frees the silent ones; then the service answers again.
        time.sleep(HEAD_TIMEOUT + 0.5)
        after = httpx.get(f"{server.url}/health", timeout=5)
    finally:
        for sock in sockets:
            sock.close()
    note(f"{MAX_CONNECTIONS + extra} connections with MAX_CONNECTIONS={MAX_CONNECTIONS}: {refused} closed at once, "
         f"{open_files} files open in the server; /health afterwards {after.status_code}")  # fmt: skip
    assert extra <= refused <= extra + 2, f"{refused} connections closed at once, {extra} were over the bound"
    assert after.status_code == 200


@pytest.mark.docker
def test_a_32_mib_header_does_not_kill_a_container_with_128_mib(image: str) -> None:
    """Before: the container was OOM-killed (exit 137)."""
    with running(image, extra=("--memory", "128m")) as container:
        sent, answer = send_head(container.url, *ATTACKS["one huge header"], 32 << 20)
        state = container.state()
        health = httpx.get(f"{container.url}/health", timeout=5)
    note(f"container: took {sent:,} of {32 << 20:,} bytes, answered {answer[:40]!r}; state {state['Status']}, "
         f"OOMKilled {state['OOMKilled']}; /health {health.status_code}")  # fmt: skip
    assert state["Running"] and not state["OOMKilled"]
    assert sent < 32 << 20 and health.status_code == 200
