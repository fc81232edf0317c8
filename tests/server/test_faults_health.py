"""/health tells the truth within about a second, and a database fault is a JSON 503, never a plain 500.

Real uvicorn, run with the image's flags; the faults are real: a lock held by another process, a
database file deleted under the server, a PostgreSQL server of the test's own frozen with SIGSTOP.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers.faults import OwnPostgres, SqliteLock, note
from tests.helpers.server import image_server_flags, uvicorn_server

# /health answers within about 1 s (its probe gives up at 0.9 s; 0.97 s measured alone). A bound, not
# a timing: beside three other test files on two cores CI saw 1.51 s (2026-12-07); before the fix,
# no answer came within 10 s.
HEALTH_BOUND_SECONDS = 3
POSTING_CLIENTS = 100


def env_for(db_url: str, **extra: str) -> dict[str, str]:
    return {"DB_URL": db_url, "BASE_URL": "http://short.test", "ENV_NAME": "test", **extra}


def timed_health(url: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = httpx.get(f"{url}/health", timeout=10)
    return time.monotonic() - started, response


async def _post_many(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        body = {"target_url": "https://example.com/"}
        return await asyncio.gather(*(client.post("/url", json=body) for _ in range(count)))


def test_health_answers_503_within_a_second_while_100_clients_wait_behind_a_lock(tmp_path: Path) -> None:
    """Before: /health ran SELECT 1 in the shared thread pool, whose 40 threads were all waiting for
    the lock: it answered 200 after 27.4 s. And each waiting POST ended in a plain-text 500."""
    db, log = tmp_path / "shortener.db", tmp_path / "server.log"
    with uvicorn_server(env_for(f"sqlite:///{db}"), log, *image_server_flags()) as server:
        assert httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).status_code == 201
        with SqliteLock(db) as lock, ThreadPoolExecutor(1) as pool:
            posting = pool.submit(asyncio.run, _post_many(server.url, POSTING_CLIENTS))
            time.sleep(0.5)  # the posts now hold every worker thread, waiting for the lock
            took, health = timed_health(server.url)
            # Held past SQLite's 5 s busy timeout, until the first waiting post has failed (its 503 is
            # in the access log; a busy machine's posts reach the lock late); the others then get through.
            deadline = time.monotonic() + 60
            while '"POST /url HTTP/1.1" 503' not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            lock.release()
            posts = posting.result(timeout=60)
        took_after, health_after = timed_health(server.url)
    statuses = sorted({response.status_code for response in posts})
    note(f"/health under the lock: {health.status_code} {health.json()} in {took:.2f} s; POST /url statuses "
         f"{statuses}; /health after: {health_after.status_code} in {took_after:.2f} s")  # fmt: skip
    assert took < HEALTH_BOUND_SECONDS, f"/health took {took:.1f} s"
    assert health.status_code == 503 and health.json()["database"] in ("timeout", "failing")
    assert health.headers["retry-after"]
    failed = [response for response in posts if response.status_code != 201]
    assert failed, "no POST waited long enough to fail: the lock did not hold"
    for response in failed:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/json" and response.headers["retry-after"]
        assert "try again" in response.json()["detail"]
    assert health_after.status_code == 200


def test_a_deleted_database_file_makes_health_503(tmp_path: Path) -> None:
    """Before: the server kept writing into the open, deleted file, and /health said 200."""
    db = tmp_path / "shortener.db"
    with uvicorn_server(env_for(f"sqlite:///{db}"), tmp_path / "server.log", *image_server_flags()) as server:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        took, health = timed_health(server.url)
    note(f"/health after the file was deleted: {health.status_code} {health.json()} in {took:.2f} s")
    assert health.status_code == 503 and health.json()["database"] == "missing"
    assert not db.exists(), "the health check must not create a new, empty database"


def test_a_frozen_postgresql_makes_health_503_within_a_second_and_200_once_it_thaws(tmp_path: Path) -> None:
    """Before: /health hung 9.9 s on the frozen server, then said 200."""
    pytest.importorskip("psycopg")
    with (
        OwnPostgres() as postgres,
        uvicorn_server(env_for(postgres.url), tmp_path / "server.log", *image_server_flags()) as server,
    ):
        key = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()["key"]
        assert httpx.get(f"{server.url}/{key}").status_code == 307  # now in the redirect cache
        postgres.freeze()
        try:
            took, health = timed_health(server.url)
            redirect = httpx.get(f"{server.url}/{key}", timeout=5)  # from the cache: no database needed
        finally:
            postgres.thaw()
        deadline = time.monotonic() + 10
        while (thawed := httpx.get(f"{server.url}/health", timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, f"/health still {thawed.status_code} after the thaw"
            time.sleep(0.2)
    note(f"/health on a frozen PostgreSQL: {health.status_code} {health.json()} in {took:.2f} s")
    assert took < HEALTH_BOUND_SECONDS, f"/health took {took:.1f} s"
    assert health.status_code == 503 and health.json()["database"] == "timeout"
    assert redirect.status_code == 307
