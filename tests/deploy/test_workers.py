"""Several worker processes (uvicorn's WEB_CONCURRENCY) on one database: they start safely on a fresh
database, every click answered is counted at stop, and the admin view lags by one flush at most."""

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from shortener_app.database import make_engine
from shortener_app.models import ShortURL
from tests.conftest import postgres_database
from tests.helpers.server import Server, image_server_flags, uvicorn_server

WORKERS = 4
STARTS = int(os.environ.get("WORKER_STARTS", "10"))
CLIENTS = 8  # separate connections, so the kernel hands them to different workers
REDIRECTS_PER_CLIENT = 25


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/shortener.db"
        return
    with postgres_database() as url:
        yield url


def workers_env(db_url: str, **extra: str) -> dict[str, str]:
    return {"DB_URL": db_url, "BASE_URL": "http://short.test", "WEB_CONCURRENCY": str(WORKERS), **extra}


def redirect_from_many_connections(server: Server, key: str) -> int:
    """Redirects from CLIENTS connections at once; how many were answered 307."""

    def one_client(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            return sum(client.get(f"/{key}").status_code == 307 for _ in range(REDIRECTS_PER_CLIENT))

    with ThreadPoolExecutor(CLIENTS) as pool:
        return sum(pool.map(one_client, range(CLIENTS)))


def clicks_in_database(db_url: str, key: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(ShortURL.clicks).where(ShortURL.key == key))
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_four_workers_start_10_times_in_a_row_on_a_fresh_database_and_count_every_click(
    kind: str, tmp_path: Path
) -> None:
    """Before: every worker ran create_all; on a fresh SQLite file 1 to 2 starts of 20 with 4 workers
    failed ("table short_urls already exists", "Application startup failed"). A race shows only now and
    then, so the proof that no worker creates the schema is the deterministic
    test_a_server_on_a_database_without_a_schema_refuses_to_start_naming_the_migrate_command; this one
    proves that four workers start cleanly and count every click, again and again (10 starts: about
    2 min per database on 2 cores; WORKER_STARTS=50 for a longer soak)."""
    failures, results = [], []
    for start in range(STARTS):
        folder = tmp_path / f"start-{start}"
        folder.mkdir()
        with fresh_database(kind, folder) as db_url:
            log = folder / "server.log"
            try:
                with uvicorn_server(workers_env(db_url), log, *image_server_flags()) as server:
                    key = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()["key"]
                    answered = redirect_from_many_connections(server, key)
                    code = server.stop()
            except (RuntimeError, TimeoutError) as error:
                failures.append(f"start {start}: {error}\n{log.read_text()[-2000:]}")
                continue
            recorded = clicks_in_database(db_url, key)
            results.append((answered, recorded))
            if code != 0 or recorded != answered or "Traceback" in log.read_text():
                failures.append(f"start {start}: exit {code}, {answered} answered, {recorded} recorded")
    print(f"{kind}: {STARTS} starts of {WORKERS} workers, {len(failures)} failed; (answered, recorded): {results}")  # noqa: T201
    assert not failures, "\n".join(failures)
    assert all(answered == CLIENTS * REDIRECTS_PER_CLIENT for answered, _ in results)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_with_four_workers_the_admin_view_is_exact_after_one_flush_interval(kind: str, tmp_path: Path) -> None:
    """Each worker buffers its own clicks; the admin view writes only its own worker's buffer, so right
    after the redirects it may show fewer. The others write theirs on their timer: after at most one
    CLICK_FLUSH_SECONDS (plus the write itself), the count is exact."""
    flush = 1.0
    with fresh_database(kind, tmp_path) as db_url:
        env = workers_env(db_url, CLICK_FLUSH_SECONDS=str(flush))
        with uvicorn_server(env, tmp_path / "server.log", *image_server_flags()) as server:
            link = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}).json()
            admin = "/" + link["admin_url"].split("/", 3)[3]
            answered = redirect_from_many_connections(server, link["key"])
            done = time.monotonic()
            right_after = httpx.get(f"{server.url}{admin}").json()["clicks"]
            time.sleep(max(0.0, done + flush + 0.25 - time.monotonic()))
            after_one_interval = httpx.get(f"{server.url}{admin}").json()["clicks"]
    print(f"{kind}: {answered} redirects; admin view right after: {right_after}, after {flush} s: {after_one_interval}")  # noqa: T201
    assert right_after <= answered
    assert after_one_interval == answered
