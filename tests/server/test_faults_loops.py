"""Targets that lead back to this service, under any spelling, are refused by a real server.

The server runs as `BASE_URL=http://localhost:PORT`, like a local run or the compose demo. Before,
the self-loop guard compared host names as text: `http://127.0.0.1:PORT/selfy` under the key
`selfy` was accepted, and `curl -L` then followed it 50 times, counting 51 clicks.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.server import Server, free_port, image_server_flags, uvicorn_server

PORT = free_port()

LOOPS = [
    "http://127.0.0.1:{port}/selfy",
    "http://127.0.0.2:{port}/selfy",
    "http://0.0.0.0:{port}/selfy",
    "http://[::1]:{port}/selfy",
    "http://[::]:{port}/selfy",
    "http://[::ffff:127.0.0.1]:{port}/selfy",
    "http://[::ffff:7f00:1]:{port}/selfy",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/selfy",
    "http://LOCALHOST:{port}/selfy",
    "http://localhost.:{port}/selfy",
    "http://app.localhost:{port}/selfy",
    "http://localhost/selfy",  # the service's own host name on any port
    "https://localhost:{port}/selfy",
    "http://127.1:{port}/selfy",
    "http://2130706433:{port}/selfy",
    "http://0x7f.0.0.1:{port}/selfy",
]
DISGUISED = {
    "userinfo": "https://localhost:8000@evil.example/",
    "user and password": "https://user:pass@example.com/",
    "right-to-left override in the path": "https://example.com/abc\u202egpj.exe",
    "right-to-left override, percent-encoded": "https://example.com/abc%E2%80%AEgpj.exe",
    "left-to-right isolate in the query": "https://example.com/?q=\u2066x",
    "zero-width space in the host": "https://exa\u200bmple.com/",
    "NUL, percent-encoded": "https://example.com/a%00b",
    "DEL": "https://example.com/a\x7fb",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("loops")
    env = {"DB_URL": f"sqlite:///{folder}/shortener.db", "BASE_URL": f"http://localhost:{PORT}"}
    with uvicorn_server(env, folder / "server.log", *image_server_flags(), port=PORT) as running:
        yield running


@pytest.mark.parametrize("spelling", LOOPS)
def test_a_target_that_points_back_at_this_service_is_refused(server: Server, spelling: str) -> None:
    key = f"selfy{LOOPS.index(spelling)}"  # the link would redirect to itself
    target = spelling.format(port=PORT).replace("selfy", key)
    response = httpx.post(f"{server.url}/url", json={"target_url": target, "key": key})
    assert response.status_code == 422, f"{target} was accepted: {response.text}"
    assert httpx.get(f"{server.url}/{key}").status_code == 404


@pytest.mark.parametrize("name", DISGUISED)
def test_a_target_with_userinfo_or_invisible_characters_is_refused(server: Server, name: str) -> None:
    response = httpx.post(f"{server.url}/url", json={"target_url": DISGUISED[name]})
    assert response.status_code == 422, f"{name} was accepted: {response.text}"


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{other}/page", "http://localhost.example/", "https://example.com/caf%C3%A9?q=a%20b"],
)
def test_targets_that_do_not_loop_are_still_accepted(server: Server, target: str) -> None:
    response = httpx.post(f"{server.url}/url", json={"target_url": target.format(other=PORT + 1)})
    assert response.status_code == 201, response.text
