"""Every endpoint and every error path, in process, on a throwaway database per test."""

import hashlib
import os
import platform
import re
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from shortener_app import keygen, schema
from shortener_app.config import Settings
from shortener_app.main import create_app
from tests.conftest import BASE_URL

TARGET = "https://www.python.org/about/"


def shorten(client: TestClient, target: str = TARGET, **extra: object) -> dict:
    response = client.post("/url", json={"target_url": target, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def admin_path(link: dict) -> str:
    return link["admin_url"].removeprefix(BASE_URL)


def test_shorten_returns_the_short_and_admin_links(client: TestClient) -> None:
    link = shorten(client)
    assert link["target_url"] == TARGET
    assert link["url"] == f"{BASE_URL}/{link['key']}"
    assert link["admin_url"].startswith(f"{BASE_URL}/admin/")
    assert link["clicks"] == 0 and link["is_active"] is True
    assert link["created_at"].endswith("+00:00"), "created_at must say it is UTC"
    assert len(link["key"]) == 7 and link["key"].isalnum()


def test_admin_secret_has_256_random_bits_unrelated_to_the_key(client: TestClient) -> None:
    links = [shorten(client) for _ in range(5)]
    secrets = [admin_path(link).removeprefix("/admin/") for link in links]
    assert len(set(secrets)) == 5
    for link, secret in zip(links, secrets, strict=True):
        assert len(secret) >= 43, "token_urlsafe(32) is 43 characters: 256 bits"
        assert link["key"] not in secret


def test_database_holds_only_a_hash_of_the_admin_secret(client: TestClient, settings: Settings) -> None:
    link = shorten(client)
    secret = admin_path(link).removeprefix("/admin/")
    engine = create_engine(settings.db_url)
    with engine.connect() as connection:
        rows = [tuple(map(str, row)) for row in connection.execute(text("SELECT * FROM short_urls"))]
    engine.dispose()
    assert not any(secret in value for row in rows for value in row), "the secret itself was stored"
    assert any(hashlib.sha256(secret.encode()).hexdigest() in row for row in rows)


def test_redirect_is_307_uncacheable_and_counted(client: TestClient) -> None:
    link = shorten(client)
    for _ in range(3):
        response = client.get(f"/{link['key']}")
        assert response.status_code == 307
        assert response.headers["location"] == TARGET
        assert "no-store" in response.headers["cache-control"]
    assert client.get(admin_path(link)).json()["clicks"] == 3


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_cached_redirect_is_answered_before_the_framework_exactly_as_the_route_answers(
    client: TestClient, method: str
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    lookups = []
    looked_up = runtime.active_link
    runtime.active_link = lambda key: lookups.append(key) or looked_up(key)
    link = shorten(client)
    first = client.request(method, f"/{link['key']}")  # a miss: the route looks the key up
    second = client.request(method, f"/{link['key']}")  # a hit: fastpath.CachedRedirects answers
    assert lookups == [link["key"]], "the second redirect did not come from the cache"
    assert (first.status_code, first.headers.items(), first.content) == (
        second.status_code, second.headers.items(), second.content,
    )  # fmt: skip
    assert client.get(admin_path(link)).json()["clicks"] == (2 if method == "GET" else 0)


def test_head_answers_like_get_without_counting(client: TestClient) -> None:
    link = shorten(client)
    response = client.head(f"/{link['key']}")
    assert response.status_code == 307 and response.headers["location"] == TARGET
    assert client.get(admin_path(link)).json()["clicks"] == 0


def test_clicks_buffered_at_shutdown_are_written(settings: Settings) -> None:
    slow = settings.model_copy(update={"click_flush_seconds": 60})
    with TestClient(create_app(slow), follow_redirects=False) as client:
        link = shorten(client)
        for _ in range(4):
            client.get(f"/{link['key']}")
    with TestClient(create_app(settings)) as client:
        assert client.get(admin_path(link)).json()["clicks"] == 4


def test_custom_key_is_used_and_a_taken_one_is_refused(client: TestClient) -> None:
    link = shorten(client, key="py-docs_1")
    assert link["key"] == "py-docs_1" and link["url"] == f"{BASE_URL}/py-docs_1"
    response = client.post("/url", json={"target_url": TARGET, "key": "py-docs_1"})
    assert response.status_code == 409
    assert "taken" in response.json()["detail"]


@pytest.mark.parametrize("key", ["admin", "docs", "health", "static", "Admin", "redoc", "url"])
def test_reserved_words_cannot_be_keys(client: TestClient, key: str) -> None:
    response = client.post("/url", json={"target_url": TARGET, "key": key})
    assert response.status_code == 422
    assert "reserved" in str(response.json()["detail"])


@pytest.mark.parametrize("key", ["ab", "x" * 65, "has space", "sl/ash", "dot.dot", "ключ", "a%00b", "'; DROP"])
def test_custom_keys_outside_the_alphabet_or_length_are_refused(client: TestClient, key: str) -> None:
    response = client.post("/url", json={"target_url": TARGET, "key": key})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], (str, list))


def test_deactivated_link_stops_redirecting_and_its_key_is_never_reused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = shorten(client)
    client.get(f"/{link['key']}")  # now cached
    response = client.delete(admin_path(link))
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert client.get(f"/{link['key']}").status_code == 404
    assert client.post("/url", json={"target_url": TARGET, "key": link["key"]}).status_code == 409
    # A random draw of the old key collides in the database and is drawn again.
    draws = iter([link["key"], "fresh01"])
    monkeypatch.setattr(keygen, "random_key", lambda _length: next(draws))
    assert shorten(client)["key"] == "fresh01"


def test_deactivating_twice_is_harmless(client: TestClient) -> None:
    link = shorten(client)
    assert client.delete(admin_path(link)).status_code == 200
    again = client.delete(admin_path(link))
    assert again.status_code == 200 and again.json()["is_active"] is False
    assert client.get(admin_path(link)).json()["is_active"] is False


def test_admin_info_shows_the_link(client: TestClient) -> None:
    link = shorten(client, key="info-me")
    info = client.get(admin_path(link)).json()
    assert {k: info[k] for k in ("key", "target_url", "url", "admin_url")} == {
        k: link[k] for k in ("key", "target_url", "url", "admin_url")
    }


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_admin_secret_is_404(client: TestClient, method: str) -> None:
    response = getattr(client, method)("/admin/not-a-secret")
    assert response.status_code == 404
    assert response.json() == {"detail": "no link with this admin secret"}


def test_an_unknown_admin_secret_writes_no_clicks_and_a_known_one_shows_them_all(settings: Settings) -> None:
    """The buffered clicks are written for the owner of a link, never for whoever guesses a secret."""
    slow = settings.model_copy(update={"click_flush_seconds": 60})
    with TestClient(create_app(slow), follow_redirects=False) as client:
        link = shorten(client)
        assert client.get(f"/{link['key']}").status_code == 307
        assert client.get("/health").json()["clicks_waiting"] == 1
        assert client.get("/admin/not-a-secret").status_code == 404
        assert client.get("/health").json()["clicks_waiting"] == 1, "an unknown secret wrote the clicks"
        assert client.get(admin_path(link)).json()["clicks"] == 1
        assert client.get("/health").json()["clicks_waiting"] == 0, "the count shown is not yet durable"


@pytest.mark.parametrize(
    "path",
    ["/nosuchkey", "/%00", "/" + "k" * 5000, "/ключ", "/'%20OR%201=1--", "/a;DROP%20TABLE%20x", "/..%2F..%2Fetc"],
)
def test_odd_or_unknown_keys_are_404_never_500(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("ftp://example.com/file", "http and https"),
        ("javascript:alert(1)", "http and https"),
        ("example.com", "http and https"),
        ("https://", "not valid"),
        ("https://exa mple.com", "whitespace"),
        ("https://example.com/\x00", "control"),
        ("https://example.com/\t", "whitespace"),
        ("https://example.com/" + "a" * 2049, "2048"),
        (f"{BASE_URL}/abc", "loop"),
        ("https://SHORT.test/x", "loop"),
    ],
)
def test_bad_target_urls_are_refused_with_a_reason(client: TestClient, target: str, reason: str) -> None:
    response = client.post("/url", json={"target_url": target})
    assert response.status_code == 422
    assert reason in str(response.json()["detail"])


def test_longest_allowed_url_is_accepted(client: TestClient) -> None:
    target = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert shorten(client, target)["target_url"] == target


@pytest.mark.parametrize(
    "body",
    [
        {"target_url": 123},
        {"target_url": None},
        {"target_url": ["https://example.com"]},
        {"target_url": TARGET, "key": 5},
        {},
        {"url": TARGET},
        {"target_url": TARGET, "unexpected": 1},
        [TARGET],
    ],
)
def test_wrong_json_shapes_are_422(client: TestClient, body: object) -> None:
    response = client.post("/url", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post("/url", content=b'{"target_url": ', headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_wrong_content_type_is_a_client_error(client: TestClient) -> None:
    response = client.post("/url", content=f'{{"target_url": "{TARGET}"}}', headers={"content-type": "text/plain"})
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_a_one_megabyte_body_is_413(client: TestClient) -> None:
    body = b'{"target_url": "' + b"a" * 1_000_000 + b'"}'
    response = client.post("/url", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_a_large_body_without_content_length_is_413(client: TestClient) -> None:
    def chunks():
        yield b'{"target_url": "'
        for _ in range(64):
            yield b"a" * 16_384
        yield b'"}'

    response = client.post("/url", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_health_is_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "clicks_waiting": 0}


def test_health_is_503_when_the_database_does_not_answer(settings: Settings) -> None:
    from shortener_app.health import HealthProbe

    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime
        # A real database nobody listens for: port 1 on loopback refuses connections.
        runtime.health = HealthProbe("postgresql+psycopg://nobody@127.0.0.1:1/none")
        response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"status": "unavailable", "database": "failing", "clicks_waiting": 0}


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/url"), ("GET", "/nokey12"), ("GET", "/admin/x"), ("DELETE", "/admin/x")]
)
def test_a_database_error_on_any_route_is_a_json_503_with_retry_after(
    settings: Settings, method: str, path: str
) -> None:
    from shortener_app.database import make_engine, make_session_factory

    with TestClient(create_app(settings), follow_redirects=False) as client:
        runtime = client.app.state.runtime
        live = (runtime.engine, runtime.sessions)
        # A real database nobody listens for: port 1 on loopback refuses connections.
        dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
        runtime.engine, runtime.sessions = dead, make_session_factory(dead)
        try:
            response = client.request(method, path, json={"target_url": TARGET} if method == "POST" else None)
        finally:
            runtime.engine, runtime.sessions = live
            dead.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "the database cannot serve this request right now; try again later"}


def test_health_says_missing_when_the_sqlite_file_is_deleted(tmp_path: Path) -> None:
    db = tmp_path / "shortener.db"
    schema.upgrade(f"sqlite:///{db}")
    with TestClient(create_app(Settings(db_url=f"sqlite:///{db}", base_url=BASE_URL))) as client:
        db.unlink()
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "missing", "clicks_waiting": 0}


def test_the_openapi_schema_documents_the_503_of_every_database_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [("/url", "post"), ("/admin/{secret}", "get"), ("/admin/{secret}", "delete"),
                         ("/{key}", "get"), ("/health", "get")]:  # fmt: skip
        assert "503" in paths[path][method]["responses"], f"{method.upper()} {path}"
    health = client.get("/openapi.json").json()["components"]["schemas"]["Health"]
    assert set(health["properties"]) == {"status", "database", "clicks_waiting"}


def test_demo_page_and_api_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form id="shorten">' in page.text
    assert 'src="http' not in page.text and 'href="http' not in page.text, "the page must load nothing from a CDN"
    assert client.get("/static/demo.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/url", "/admin/{secret}", "/{key}", "/health"} <= set(schema["paths"])


def test_about_says_which_process_answered_and_nothing_of_its_settings(client: TestClient) -> None:
    about = client.get("/about")
    assert about.status_code == 200
    assert about.json() == {
        "served_by": socket.gethostname(),
        "user_id": os.getuid(),
        "root_read_only": bool(os.statvfs("/").f_flag & os.ST_RDONLY),
        "python": platform.python_version(),
        "version": client.app.version,
        "image_version": os.environ.get("IMAGE_VERSION") or None,
    }
    settings = client.app.state.runtime.settings
    assert str(settings.base_url).rstrip("/") not in about.text and settings.db_url not in about.text


def test_the_admin_link_is_a_page_for_a_browser_and_json_for_an_api_client(client: TestClient) -> None:
    link = shorten(client)
    admin = link["admin_url"].removeprefix(BASE_URL)
    browser = client.get(admin, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.headers["content-type"].startswith("text/html") and browser.headers["vary"] == "Accept"
    assert admin.rsplit("/", 1)[1] not in browser.text, "the page must not carry the secret"
    assert '<button id="deactivate"' in browser.text
    assert client.get(admin).json()["key"] == link["key"]
    assert client.get(admin, headers={"Accept": "application/json"}).json()["key"] == link["key"]


@pytest.mark.parametrize("page", ["/", "/docs", "/redoc", "/admin/not-a-secret"])
def test_the_pages_load_nothing_from_elsewhere_and_run_no_inline_script(client: TestClient, page: str) -> None:
    """Without internet (a workshop room) the demo and the API docs still work, and a CSP of
    `script-src 'self'` allows every script they run: each is a file this app serves."""
    html = client.get(page, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})  # a browser's
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    sources = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html.text)
    assert sources, f"{page} loads no script or style"
    assert [source for source in sources if not source.startswith("/")] == [], f"{page} loads from elsewhere"
    for source in sources:
        assert client.get(source).status_code == 200, f"{page}: {source} is not served"
    inline = re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html.text, re.DOTALL)
    assert inline == [], f"{page} runs an inline script, which script-src 'self' refuses"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path}/shortener.db", base_url=BASE_URL)
    schema.upgrade(settings.db_url)
    with TestClient(create_app(settings)) as client, client.app.state.runtime.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
