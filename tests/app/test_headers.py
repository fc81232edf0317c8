"""What the app's own answers say in their headers, with no proxy in front.

The proxy's security headers on every answer, with the proxy's values (read from its config, so the
two cannot drift); `Cache-Control: no-store` on every answer that carries an admin secret's power; and
no address taken from the request's Host header, which a client writes as it likes.
"""

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from shortener_app.config import Settings
from shortener_app.database import make_engine, make_session_factory
from shortener_app.main import create_app
from tests.conftest import BASE_URL
from tests.helpers.repo import ROOT
from tests.helpers.server import Server, uvicorn_server

PROXY = ROOT / "container" / "proxy"
TARGET = "https://example.com/"
TAKEN = {"target_url": TARGET, "key": "taken"}
# What a client may write in Host; a redirect or link built from it sends the visitor there.
EVIL = "evil.example"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def proxy_security_headers(scheme: str) -> dict[str, str]:
    """The headers container/proxy/security-headers.conf adds, as nginx sends them for `scheme`: a
    variable's value comes from its `map $scheme` in http.conf, and an empty value sends no header."""
    headers = {}
    conf = (PROXY / "security-headers.conf").read_text()
    for name, value in re.findall(r'^add_header\s+(\S+)\s+("[^"]*"|\S+)\s+always;$', conf, re.MULTILINE):
        if value.startswith("$"):
            value = mapped_by_scheme(value, scheme)
        if value.strip('"'):
            headers[name] = value.strip('"')
    return headers


def mapped_by_scheme(variable: str, scheme: str) -> str:
    http = (PROXY / "http.conf").read_text()
    block = re.search(rf"^map \$scheme {re.escape(variable)} \{{(.*?)^\}}", http, re.MULTILINE | re.DOTALL)
    assert block, f"http.conf maps no {variable} from $scheme"
    entries = dict(re.findall(r'^\s*(\S+)\s+("[^"]*"|\S+);', block.group(1), re.MULTILINE))
    return entries.get(scheme, entries["default"])


SECURITY_HEADERS = set(proxy_security_headers("https"))


def sent(answer: httpx.Response, names: set[str]) -> dict[str, list[str]]:
    return {name: answer.headers.get_list(name) for name in names if name in answer.headers}


@pytest.fixture
def answers(settings: Settings) -> Iterator[TestClient]:
    """The app in process, answering a 500 as a client gets it instead of raising it into the test."""
    with TestClient(create_app(settings), follow_redirects=False, raise_server_exceptions=False) as client:
        yield client


def shorten(client: TestClient, **extra: object) -> dict:
    response = client.post("/url", json={"target_url": TARGET, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def admin_path(link: dict) -> str:
    return link["admin_url"].removeprefix(BASE_URL)


# --- The security headers ---


def test_the_proxy_config_is_read_with_its_headers_and_hsts_over_https_only() -> None:
    """The parse above finds what the proxy sends: one that found nothing would make the tests below prove nothing."""
    over_http = set(proxy_security_headers("http"))
    assert {"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} <= over_http
    assert over_http | {"Strict-Transport-Security"} == SECURITY_HEADERS


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_app_sends_the_proxys_security_headers_with_the_same_values(settings: Settings, scheme: str) -> None:
    with TestClient(create_app(settings), base_url=f"{scheme}://short.test") as client:
        answer = client.get("/health")
    expected = {name: [value] for name, value in proxy_security_headers(scheme).items()}
    assert sent(answer, SECURITY_HEADERS) == expected


def _redirect_from_the_cache(client: TestClient) -> httpx.Response:
    key = shorten(client)["key"]
    assert client.get(f"/{key}").status_code == 307  # the route answered, and filled the cache
    return client.get(f"/{key}")


def _expired(client: TestClient) -> httpx.Response:
    link = shorten(client)
    assert client.patch(admin_path(link), json={"expires_at": "2001-01-01T00:00:00Z"}).status_code == 200
    return client.get(f"/{link['key']}")


def _database_unavailable(client: TestClient) -> httpx.Response:
    # A real database nobody listens for: port 1 on loopback refuses connections.
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    client.app.state.runtime.sessions = make_session_factory(dead)  # type: ignore[attr-defined]
    try:
        return client.post("/url", json={"target_url": TARGET})
    finally:
        dead.dispose()


def _unexpected_error(client: TestClient) -> httpx.Response:
    def fail(_key: str) -> None:
        raise RuntimeError("a bug")

    client.app.state.runtime.active_link = fail  # type: ignore[attr-defined]
    return client.get("/nokey12")


KINDS: dict[str, tuple[int, Callable[[TestClient], httpx.Response]]] = {
    "the demo page": (200, lambda client: client.get("/")),
    "Swagger UI": (200, lambda client: client.get("/docs")),
    "ReDoc": (200, lambda client: client.get("/redoc")),
    "the OpenAPI schema": (200, lambda client: client.get("/openapi.json")),
    "a static file": (200, lambda client: client.get("/static/demo.js")),
    "a vendored asset": (200, lambda client: client.get("/static/vendor/redoc.standalone.js")),
    "JSON": (200, lambda client: client.get("/health")),
    "the admin page": (200, lambda client: client.get(admin_path(shorten(client)), headers=BROWSER)),
    "a created link": (201, lambda client: client.post("/url", json={"target_url": TARGET})),
    "a redirect by the route": (307, lambda client: client.get(f"/{shorten(client)['key']}")),
    "a redirect from the cache, before the framework": (307, _redirect_from_the_cache),
    "a HEAD redirect": (307, lambda client: client.head(f"/{shorten(client)['key']}")),
    "an unknown key": (404, lambda client: client.get("/nokey12")),
    "no such route": (404, lambda client: client.get("/no/such/route")),
    "a method not allowed": (405, lambda client: client.put("/url")),
    "a taken key": (409, lambda client: shorten(client, key="taken") and client.post("/url", json=TAKEN)),
    "an expired link": (410, _expired),
    "a body too large": (413, lambda client: client.post("/url", content=b"x" * 20_000)),
    "invalid input": (422, lambda client: client.post("/url", json={})),
    "the database unavailable": (503, _database_unavailable),
    "an unexpected error": (500, _unexpected_error),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_answer_carries_the_security_headers_once(answers: TestClient, kind: str) -> None:
    status, ask = KINDS[kind]
    answer = ask(answers)
    assert answer.status_code == status, answer.text[:300]
    expected = {name: [value] for name, value in proxy_security_headers("http").items()}
    assert sent(answer, SECURITY_HEADERS) == expected, "over plain HTTP: no Strict-Transport-Security"
    assert len(answer.headers.get_list("cache-control")) <= 1


# --- No-store where an admin secret's power is ---

ADMIN_ANSWERS: dict[str, tuple[int, Callable[[TestClient], httpx.Response]]] = {
    "a created link": (201, lambda client: client.post("/url", json={"target_url": TARGET})),
    "the link's JSON": (200, lambda client: client.get(admin_path(shorten(client)))),
    "the admin page": (200, lambda client: client.get(admin_path(shorten(client)), headers=BROWSER)),
    "a deactivation": (200, lambda client: client.delete(admin_path(shorten(client)))),
    "a new expiry": (200, lambda client: client.patch(admin_path(shorten(client)), json={"expires_at": None})),
    "an unknown secret": (404, lambda client: client.get("/admin/not-a-secret")),
    "an unknown secret's page": (200, lambda client: client.get("/admin/not-a-secret", headers=BROWSER)),
    "deactivating an unknown secret": (404, lambda client: client.delete("/admin/not-a-secret")),
    "changing an unknown secret": (404, lambda client: client.patch("/admin/not-a-secret", json={"expires_at": None})),
    "a slash too many": (404, lambda client: client.get(admin_path(shorten(client)) + "/")),
    "a method not allowed": (405, lambda client: client.put("/admin/not-a-secret")),
    "an invalid change": (422, lambda client: client.patch(admin_path(shorten(client)), json={"expires_at": 1})),
}


@pytest.mark.parametrize("kind", ADMIN_ANSWERS)
def test_every_answer_that_carries_an_admin_secrets_power_is_never_stored(client: TestClient, kind: str) -> None:
    status, ask = ADMIN_ANSWERS[kind]
    answer = ask(client)
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers.get_list("cache-control") == ["no-store"]


# --- Nothing built from the Host header ---

LINK_PATHS: dict[str, Callable[[dict], str]] = {
    "/docs/": lambda _link: "/docs/",
    "/redoc/": lambda _link: "/redoc/",
    "/health/": lambda _link: "/health/",
    "/url/": lambda _link: "/url/",
    "/<key>/": lambda link: f"/{link['key']}/",
    "/admin/<secret>/": lambda link: admin_path(link) + "/",
}


@pytest.mark.parametrize("path", LINK_PATHS)
def test_a_path_with_a_slash_too_many_is_a_json_404_not_a_redirect_to_the_host_given(
    client: TestClient, path: str
) -> None:
    """Starlette's trailing-slash redirect went to http://<Host>/...: for /admin/<secret>/ that sent the
    admin secret to whatever host the request named."""
    answer = client.get(LINK_PATHS[path](shorten(client)), headers={"Host": EVIL})
    assert answer.status_code == 404, answer.headers.get("location")
    assert answer.json() == {"detail": "Not Found"}
    assert "location" not in answer.headers
    assert EVIL not in str(answer.headers.raw)


def test_every_link_and_page_comes_from_base_url_never_from_the_host_given(client: TestClient) -> None:
    evil = {"Host": EVIL}
    created = client.post("/url", json={"target_url": TARGET}, headers=evil)
    link = created.json()
    assert link["url"] == f"{BASE_URL}/{link['key']}"
    assert link["admin_url"].startswith(f"{BASE_URL}/admin/")
    answers = [
        created,
        client.get(admin_path(link), headers=evil),
        client.get(admin_path(link), headers={**evil, **BROWSER}),
        client.get(f"/{link['key']}", headers=evil),
        *(client.get(page, headers=evil) for page in ["/", "/docs", "/redoc", "/openapi.json", "/static/demo.js"]),
    ]
    assert answers[1].json()["admin_url"] == link["admin_url"]
    assert answers[3].headers["location"] == TARGET
    for answer in answers:
        assert answer.status_code in (200, 201, 307), answer.url
        assert EVIL not in answer.text and EVIL not in str(answer.headers.raw), answer.url


# --- Through a real server: a request with no Host, and the scheme a proxy forwards ---


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("headers")
    env = {"DB_URL": f"sqlite:///{folder}/shortener.db", "BASE_URL": "http://short.test"}
    # uvicorn's defaults: X-Forwarded-* believed from 127.0.0.1, where the test's "proxy" is.
    with uvicorn_server(env, folder / "server.log") as running:
        yield running


def raw_request(server: Server, request: bytes) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):  # HTTP/1.0: the server closes after its answer
            answer += chunk
    return answer


def test_a_request_with_no_host_header_is_not_redirected_to_the_servers_own_address(server: Server) -> None:
    """HTTP/1.0 needs no Host: Starlette's trailing-slash redirect then named the server's own address."""
    answer = raw_request(server, b"GET /docs/ HTTP/1.0\r\n\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 404 "), head
    assert "location:" not in head.lower()
    assert server.url.removeprefix("http://") not in answer.decode()


@pytest.mark.parametrize(("forwarded", "hsts"), [("https", True), ("http", False)])
def test_strict_transport_security_is_sent_only_when_a_trusted_proxy_forwards_https(
    server: Server, forwarded: str, hsts: bool
) -> None:
    answer = httpx.get(f"{server.url}/health", headers={"X-Forwarded-Proto": forwarded})
    assert answer.status_code == 200
    expected = {name: [value] for name, value in proxy_security_headers("https" if hsts else "http").items()}
    assert sent(answer, SECURITY_HEADERS) == expected
