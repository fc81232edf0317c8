"""The app under a real uvicorn: concurrency, graceful shutdown, and what reaches the logs."""

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from tests.helpers.assets import asset
from tests.helpers.repo import ROOT
from tests.helpers.server import free_port, uvicorn_server

CONCURRENT_REDIRECTS = 300
# Links deactivated while they are being followed: enough that, before the cache's generations, some
# came back into the cache in every run here (see the test).
RACED_LINKS = 60
TARGET = "https://example.com/"

healthcheck = asset("healthcheck")


def env_for(db_url: str, **extra: str) -> dict[str, str]:
    return {"DB_URL": db_url, "BASE_URL": "http://short.test", "ENV_NAME": "test", **extra}


async def _redirect_many(url: str, key: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.get(f"/{key}") for _ in range(count)))
    return [response.status_code for response in responses]


def test_clicks_are_not_lost_under_concurrency(db_url: str, tmp_path: Path) -> None:
    with uvicorn_server(env_for(db_url, CLICK_FLUSH_SECONDS="0.05"), tmp_path / "server.log") as server:
        link = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()
        statuses = asyncio.run(_redirect_many(server.url, link["key"], CONCURRENT_REDIRECTS))
        assert statuses == [307] * CONCURRENT_REDIRECTS
        secret_path = link["admin_url"].removeprefix("http://short.test")
        clicks = httpx.get(f"{server.url}{secret_path}").json()["clicks"]
    assert clicks == CONCURRENT_REDIRECTS, f"{CONCURRENT_REDIRECTS - clicks} clicks were lost"


async def _deactivate_while_following(url: str, links: list[dict]) -> list[str]:
    """Each link's DELETE sent while two GETs of its key are on their way, then one more GET once all
    three have answered; returns the keys that GET still redirected."""
    still_redirecting = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for link in links:
            key, admin = link["key"], link["admin_url"].removeprefix("http://short.test")
            # Two GETs in flight lose the race to the DELETE far more often than one.
            *_, deleted = await asyncio.gather(client.get(f"/{key}"), client.get(f"/{key}"), client.delete(admin))
            assert deleted.status_code == 200, deleted.text
            if (await client.get(f"/{key}")).status_code != 404:
                still_redirecting.append(key)
    return still_redirecting


def test_a_link_deactivated_while_it_is_followed_stops_redirecting_once_the_delete_answers(
    db_url: str, tmp_path: Path
) -> None:
    """A redirect that misses reads the link in a worker thread, then fills the cache. Before, a DELETE
    that committed and emptied the cache while that read was on its way back saw the link put back,
    and it redirected on this replica for the cache's whole TTL."""
    with uvicorn_server(env_for(db_url), tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url) as client:
            links = [client.post("/url", json={"target_url": TARGET}).json() for _ in range(RACED_LINKS)]
        still_redirecting = asyncio.run(_deactivate_while_following(server.url, links))
    assert still_redirecting == [], f"{len(still_redirecting)} of {RACED_LINKS} deactivated links still redirected"


def test_sigterm_writes_buffered_clicks_before_exit(tmp_path: Path) -> None:
    db = tmp_path / "shortener.db"
    # A flush interval longer than the test: only the shutdown flush can write these clicks.
    env = env_for(f"sqlite:///{db}", CLICK_FLUSH_SECONDS="60")
    with uvicorn_server(env, tmp_path / "server.log") as server:
        key = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()["key"]
        for _ in range(25):
            assert httpx.get(f"{server.url}/{key}").status_code == 307
        # Plain uvicorn raises SIGTERM again after a clean shutdown and dies of it (-15 here, and
        # 143 in a container that is not PID 1); container/serve.py exits 0.
        assert server.stop() == 0
        assert "Application shutdown complete" in server.output()
    with sqlite3.connect(db) as connection:
        (clicks,) = connection.execute("SELECT clicks FROM short_urls WHERE key = ?", (key,)).fetchone()
    assert clicks == 25


def test_admin_secrets_never_reach_the_access_log(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path}/shortener.db")
    with uvicorn_server(env, tmp_path / "server.log") as server:
        link = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()
        secret = link["admin_url"].rsplit("/", 1)[1]
        path = f"/admin/{secret}"
        assert httpx.get(f"{server.url}{path}").status_code == 200
        assert httpx.delete(f"{server.url}{path}?x=1").status_code == 200
        server.stop()
        log = server.output()
    assert secret not in log, "an admin secret was written to the log"
    assert log.count('"GET /admin/<redacted> HTTP/1.1" 200') == 1
    assert '"DELETE /admin/<redacted>?x=1 HTTP/1.1" 200' in log


def test_importing_the_app_touches_no_database(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "never.db"
    subprocess.run(
        [sys.executable, "-c", "import shortener_app.main"],
        env={"DB_URL": f"sqlite:///{db}", "PATH": ""},
        cwd=ROOT,
        check=True,
    )
    assert not db.exists(), "importing the app created the database"


def test_the_health_probe_waits_for_a_starting_server_then_succeeds(tmp_path: Path) -> None:
    port = free_port()
    with ThreadPoolExecutor(1) as pool:
        # As Docker does while the container starts: the probe runs before anything listens.
        answer = pool.submit(healthcheck.probe, "127.0.0.1", port, 30.0)
        with uvicorn_server(env_for(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path / "server.log", port=port):
            assert answer.result(timeout=30) is True


def test_the_health_probe_fails_on_any_answer_but_200() -> None:
    class Unhealthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Unhealthy) as server, ThreadPoolExecutor(1) as pool:
        pool.submit(server.handle_request)
        assert healthcheck.probe("127.0.0.1", server.server_port, wait=30.0) is False


def test_the_health_probe_asks_the_path_and_port_its_settings_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """An adopted app's endpoint (here /healthz) is a setting of the probe, not an edit of it."""
    asked: list[str] = []

    class Healthz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Healthz) as server, ThreadPoolExecutor(1) as pool:
        monkeypatch.setenv("HEALTH_PATH", "/healthz")
        monkeypatch.setenv("HEALTH_PORT", str(server.server_port))
        pool.submit(server.handle_request)
        assert healthcheck.probe(wait=5.0) is True
    assert asked == ["/healthz"]


def test_the_health_probe_gives_up_when_nothing_listens() -> None:
    assert healthcheck.probe("127.0.0.1", free_port(), wait=0.2) is False
