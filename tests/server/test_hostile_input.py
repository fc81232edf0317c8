"""Hostile input, round 2: a JSON answer for every body, and hosts compared as a browser reads them.

The bodies go to a real server started as the image starts it. Before, each of them got a
plain-text 500 (or a reset connection) and an 85-line traceback in the log: Python's json reads
NaN, Infinity and 1e400 as floats and keeps lone surrogates, and FastAPI's 422 handler then failed
to encode the input it echoes. The host spellings and characters go through the app in process.
"""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from shortener_app import schema
from shortener_app.config import Settings
from shortener_app.main import create_app
from tests.helpers.faults import note
from tests.helpers.server import Server, image_server_flags, uvicorn_server

JSON = "application/json"
TARGET = b'"https://example.com/"'

# name: (body, content type). Each one was a plain-text 500 before.
CRASHED = {
    "NaN": (b'{"target_url": NaN}', JSON),
    "Infinity": (b'{"target_url": Infinity}', JSON),
    "-Infinity": (b'{"target_url": -Infinity}', JSON),
    "1e400": (b'{"target_url": 1e400}', JSON),
    "NaN in a member the schema does not know": (b'{"target_url": ' + TARGET + b', "n": NaN}', JSON),
    "a lone surrogate in the target": (b'{"target_url": "https://example.com/\\ud800abc"}', JSON),
    "a lone low surrogate in the key": (b'{"target_url": ' + TARGET + b', "key": "\\uDC00abc"}', JSON),
    "a lone surrogate in a member name": (b'{"target_url": ' + TARGET + b', "\\ud800": 1}', JSON),
    "a lone surrogate as raw bytes": (b'{"target_url": "https://example.com/\xed\xa0\x80"}', JSON),
    "bytes that are not UTF-8, sent as text": (b'{"target_url": "\xff"}', "text/plain"),
}
# Bodies JSON allows but readers disagree on: now refused, before accepted (201).
AMBIGUOUS = {
    "a member named twice": b'{"target_url": "https://example.com/a", "target_url": "https://example.com/b"}',
    "a noncharacter": b'{"target_url": "https://example.com/\\uffff"}',
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("hostile")
    env = {"DB_URL": f"sqlite:///{folder}/shortener.db", "BASE_URL": "http://short.test", "PYTHONUNBUFFERED": "1"}
    with uvicorn_server(env, folder / "server.log", *image_server_flags()) as running:
        yield running


def post_and_read_log(server: Server, body: bytes, content_type: str) -> tuple[httpx.Response, list[str]]:
    """POST `body` to /url; the answer, and the lines the server logged meanwhile."""
    before = len(server.output().splitlines())
    response = httpx.post(f"{server.url}/url", content=body, headers={"content-type": content_type})
    deadline = time.monotonic() + 2
    while len(server.output().splitlines()) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # anything logged after the access line, such as a traceback, has arrived too
    return response, server.output().splitlines()[before:]


def assert_a_json_client_error_and_one_log_line(response: httpx.Response, logged: list[str]) -> None:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"] == JSON, response.text[:300]
    assert response.json()["detail"]
    assert len(logged) == 1 and '"POST /url HTTP/1.1" 4' in logged[0], "\n".join(logged[:20])


@pytest.mark.parametrize("name", CRASHED)
def test_a_body_with_what_json_cannot_carry_gets_a_json_4xx_and_one_log_line(server: Server, name: str) -> None:
    response, logged = post_and_read_log(server, *CRASHED[name])
    assert_a_json_client_error_and_one_log_line(response, logged)


@pytest.mark.parametrize("name", AMBIGUOUS)
def test_a_body_that_json_readers_read_differently_is_refused(server: Server, name: str) -> None:
    response, logged = post_and_read_log(server, AMBIGUOUS[name], JSON)
    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert_a_json_client_error_and_one_log_line(response, logged)


def test_a_refused_lone_surrogate_is_named_in_the_answer(server: Server) -> None:
    response, _ = post_and_read_log(server, CRASHED["a lone surrogate in the target"][0], JSON)
    assert "\\ud800" in response.json()["detail"][0]["ctx"]["error"]


def test_a_thousand_non_finite_bodies_add_one_short_log_line_each(server: Server) -> None:
    log_bytes, lines = server.log.stat().st_size, len(server.output().splitlines())
    start = time.monotonic()
    with httpx.Client(base_url=server.url) as client:
        statuses = {client.post("/url", content=b'{"target_url": NaN}', headers={"content-type": JSON}).status_code
                    for _ in range(1000)}  # fmt: skip
    took = time.monotonic() - start
    time.sleep(0.2)
    added_bytes = server.log.stat().st_size - log_bytes
    added_lines = len(server.output().splitlines()) - lines
    note(
        f"1,000 NaN bodies: answered {statuses} in {took:.2f} s; the log grew {added_lines} lines, {added_bytes} bytes"
    )
    assert statuses == {422}
    assert added_lines == 1000 and "Traceback" not in server.output()
    assert added_bytes < 1000 * 120


# Requests uvicorn itself refuses before any app sees them; nginx passes both on. Before: text/plain.
UNPARSABLE = {
    "a control byte in a header value": b"GET /health HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n",
    "a raw byte that is not ASCII in the path": b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
    "a header with no colon": b"GET /health HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
}


def raw_exchange(url: str, request: bytes) -> httpx.Response:
    """One request written byte for byte (no client would send it), the answer read until close."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


@pytest.mark.parametrize("name", UNPARSABLE)
def test_a_request_the_server_cannot_parse_gets_a_json_400(server: Server, name: str) -> None:
    response = raw_exchange(server.url, UNPARSABLE[name])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == JSON, response.headers
    assert response.json()["detail"], response.text


def test_uvicorns_other_protocol_h11_refuses_in_json_too(tmp_path: Path) -> None:
    """The image's uvicorn parses with httptools; `--http h11` (uvicorn without its extras) is the other."""
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    with uvicorn_server(env, tmp_path / "server.log", *image_server_flags(), "--http", "h11") as h11:
        response = raw_exchange(h11.url, UNPARSABLE["a header with no colon"])
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == JSON, response.headers


def test_a_request_over_the_servers_connection_limit_gets_a_json_503(tmp_path: Path) -> None:
    """The image allows 500 (`--limit-concurrency`); here 2, held by two idle connections."""
    env = {"DB_URL": f"sqlite:///{tmp_path}/shortener.db"}
    flags = image_server_flags()
    flags[flags.index("--limit-concurrency") + 1] = "2"
    with uvicorn_server(env, tmp_path / "server.log", *flags) as limited:
        host, port = limited.url.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(2)]
        try:
            response = raw_exchange(limited.url, b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        finally:
            for sock in held:
                sock.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == JSON, response.headers
    assert response.json()["detail"], response.text


# --- Hosts as a browser reads them, and characters that render as nothing (in process) ---

BASE = "https://short.example"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("hosts")
    settings = Settings(db_url=f"sqlite:///{folder}/shortener.db", base_url=BASE)
    schema.upgrade(settings.db_url)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("local")
    settings = Settings(db_url=f"sqlite:///{folder}/shortener.db", base_url="http://localhost:8000")
    schema.upgrade(settings.db_url)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


# A browser maps each to https://short.example/x (WHATWG URL, UTS #46): one visit would loop.
OWN_HOST_SPELLINGS = {
    "fullwidth letters": "https://\uff53\uff48\uff4f\uff52\uff54.example/x",
    "fullwidth capitals": "https://\uff33\uff28\uff2f\uff32\uff34.EXAMPLE/x",
    "ideographic full stop": "https://short\u3002example/x",
    "fullwidth full stop": "https://short\uff0eexample/x",
    "halfwidth ideographic full stop": "https://short\uff61example/x",
}
LOCAL_SPELLINGS = {
    "fullwidth digits": "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8000/x",
    "ideographic full stops in 127.0.0.1": "http://127\u30020\u30020\u30021:8000/x",
}


@pytest.mark.parametrize("name", OWN_HOST_SPELLINGS)
def test_a_spelling_a_browser_maps_to_this_service_is_refused_as_a_loop(app: TestClient, name: str) -> None:
    response = app.post("/url", json={"target_url": OWN_HOST_SPELLINGS[name]})
    assert response.status_code == 422, response.text
    assert "loop" in response.text


@pytest.mark.parametrize("name", LOCAL_SPELLINGS)
def test_a_spelling_a_browser_maps_to_a_local_service_is_refused_as_a_loop(local_app: TestClient, name: str) -> None:
    response = local_app.post("/url", json={"target_url": LOCAL_SPELLINGS[name]})
    assert response.status_code == 422, response.text
    assert "loop" in response.text  # before, refused only because `validators` could not parse it


# Characters that render as nothing, each by the rule that catches it (validation.py, invisible.py).
INVISIBLE = {
    "U+3164 Hangul filler": "\u3164",
    "U+115F Hangul choseong filler": "\u115f",
    "U+1160 Hangul jungseong filler": "\u1160",
    "U+FFA0 halfwidth Hangul filler": "\uffa0",
    "U+2800 braille pattern blank": "\u2800",
    "U+1D159 musical symbol null notehead": "\U0001d159",
    "U+034F combining grapheme joiner": "\u034f",
    "U+17B4 Khmer inherent vowel": "\u17b4",
    "U+FE0F variation selector": "\ufe0f",
    "U+E0100 variation selector 17": "\U000e0100",
}


@pytest.mark.parametrize("name", INVISIBLE)
@pytest.mark.parametrize("where", ["path", "query", "host", "path, percent-encoded"])
def test_a_character_that_renders_as_nothing_is_refused_anywhere_in_a_target(
    app: TestClient, name: str, where: str
) -> None:
    char = INVISIBLE[name]
    encoded = "".join(f"%{byte:02X}" for byte in char.encode())
    target = {
        "path": f"https://example.com/log{char}in",
        "query": f"https://example.com/?next={char}",
        "host": f"https://exam{char}ple.com/",
        "path, percent-encoded": f"https://example.com/log{encoded}in",
    }[where]
    response = app.post("/url", json={"target_url": target})
    assert response.status_code == 422, f"{target!r} was accepted: {response.text}"
    assert "renders as nothing" in response.text


@pytest.mark.parametrize(
    ("typed", "opened"),
    [
        ("https://\u0430pple.com/login", "https://xn--pple-43d.com/login"),  # a Cyrillic a
        ("https://m\u00fcnchen.de/stadtplan", "https://xn--mnchen-3ya.de/stadtplan"),
        ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com:8443/x", "https://example.com:8443/x"),
        ("https://\u4f8b\u3048.jp/\u30d1\u30b9", "https://xn--r8jz45g.jp/\u30d1\u30b9"),
    ],
)
def test_a_non_ascii_host_is_stored_and_shown_as_the_ascii_host_a_browser_opens(
    app: TestClient, typed: str, opened: str
) -> None:
    created = app.post("/url", json={"target_url": typed})
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["target_url"] == opened
    assert app.get(f"/{link['key']}").headers["location"].startswith(opened.split("/\u30d1")[0])
    assert app.get(link["admin_url"].removeprefix(BASE)).json()["target_url"] == opened


def test_a_host_that_is_not_a_valid_international_name_is_refused(app: TestClient) -> None:
    response = app.post("/url", json={"target_url": "https://\u0300abc.example/"})  # begins with a combining mark
    assert response.status_code == 422, response.text
    assert "international domain name" in response.text


def test_an_ascii_target_is_stored_exactly_as_typed(app: TestClient) -> None:
    target = "https://Example.COM/Caf%C3%A9?q=a%20b"
    assert app.post("/url", json={"target_url": target}).json()["target_url"] == target
