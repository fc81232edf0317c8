"""The app starts without its database, says so, and serves it once it answers, with no restart.

Real uvicorn with the image's flags, against a PostgreSQL server of the test's own that is down when
the app starts. Before: the start was refused (exit 3, "cannot read the database's schema revision"),
so an app crash during a database outage became a crash loop, with Docker's back-off added to the
outage once the database was back. A database that answers with no schema is still refused.
"""

from pathlib import Path

import httpx
import pytest

from tests.helpers.faults import OwnPostgres
from tests.helpers.server import image_server_flags, run_migrate_step, uvicorn_server
from tests.helpers.waits import until
from tests.server.test_faults_health import env_for

# How long the app may take to notice the database is back (it asks every second).
NOTICE_BOUND_SECONDS = 20


def test_the_app_starts_without_its_database_and_serves_it_once_it_is_back(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with OwnPostgres() as postgres:
        env = env_for(postgres.url)
        run_migrate_step(env)
        postgres.stop()  # the outage: the app (re)starts during it
        with uvicorn_server(env, tmp_path / "server.log", *image_server_flags(), migrate=False,
                            healthy=False) as server:  # fmt: skip
            health = httpx.get(f"{server.url}/health", timeout=10)
            page = httpx.get(f"{server.url}/", timeout=10)
            create = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}, timeout=10)
            postgres.start()
            until(lambda: httpx.get(f"{server.url}/health", timeout=10).status_code == 200, NOTICE_BOUND_SECONDS,
                  "/health not 200 after the database came back")  # fmt: skip
            created = httpx.post(f"{server.url}/url", json={"target_url": "https://example.com/"}, timeout=10)
            alive = server.process.poll() is None
            log = server.output()
    assert health.status_code == 503 and health.json()["database"] in ("failing", "timeout"), health.text
    assert page.status_code == 200, "what needs no database is served"
    assert create.status_code == 503 and create.headers["retry-after"], create.text
    assert create.json()["detail"].startswith("the database cannot serve")
    assert created.status_code == 201 and alive, "a create once the database is back, with no restart"
    assert "the database cannot be reached" in log and "its schema is at head: serving it" in log


def test_a_database_that_comes_back_without_a_schema_still_stops_the_app(tmp_path: Path) -> None:
    """The control: what a start refuses (no schema), the app refuses when the database comes back."""
    pytest.importorskip("psycopg")
    with (
        OwnPostgres(started=False) as postgres,
        uvicorn_server(
            env_for(postgres.url), tmp_path / "server.log", *image_server_flags(), migrate=False, healthy=False
        ) as server,  # fmt: skip
    ):
        postgres.start()  # a new, empty server: no migrate step has run on it
        until(lambda: server.process.poll() is not None, NOTICE_BOUND_SECONDS, "the app kept serving")
        log = server.output()
    assert "the database has no schema" in log and "Stopping." in log


def test_a_reachable_database_without_a_schema_is_refused_at_start(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with (
        OwnPostgres() as postgres,
        pytest.raises(RuntimeError, match="exited"),
        uvicorn_server(env_for(postgres.url), tmp_path / "server.log", *image_server_flags(), migrate=False),
    ):
        pass
    assert "the database has no schema" in (tmp_path / "server.log").read_text()
