"""A schema change end to end: a database written by release 1.0.0's own code (taken from git) is
upgraded by the migrate step with nothing lost; that code keeps serving on the new schema (expand
first); and a downgrade to revision 0001 loses the expiries only."""

import os
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text

from shortener_app import schema
from shortener_app.database import make_engine
from tests.helpers.release import admin_path, assert_served_as_before, export_release_1, fill
from tests.helpers.repo import ROOT
from tests.helpers.server import Server, image_server_flags, run_migrate_step, uvicorn_server

COLUMNS = "key, target_url, admin_hash, clicks, is_active, created_at"


@pytest.fixture(scope="module")
def release_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Release 1.0.0's shortener_app, exported from git into a folder of its own."""
    return export_release_1(tmp_path_factory.mktemp("release-1"), "shortener_app")


def serve_release_1(folder: Path, db_url: str, log: Path) -> AbstractContextManager[Server]:
    """Release 1.0.0's code, started as its image did: no migrate step (it ran create_all itself)."""
    env = {"DB_URL": db_url, "BASE_URL": "http://short.test"}
    return uvicorn_server(env, log, *image_server_flags(), "--app-dir", str(folder), migrate=False)


def rows(db_url: str) -> list[tuple]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(f"SELECT {COLUMNS} FROM short_urls ORDER BY id"))]
    finally:
        engine.dispose()


def columns(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return {column["name"] for column in inspect(connection).get_columns("short_urls")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("made_by", ["release 1.0.0 create_all", "revision 0001"])
def test_a_database_release_1_wrote_is_upgraded_by_the_migrate_step_with_nothing_lost(
    release_1: Path, empty_db_url: str, tmp_path: Path, made_by: str
) -> None:
    db_url = empty_db_url
    if made_by == "revision 0001":
        from alembic import command

        command.upgrade(schema.config(db_url), schema.BASELINE)
    with serve_release_1(release_1, db_url, tmp_path / "release-1.log") as old:
        links = fill(old.url)
        assert old.stop() == 0
    before = rows(db_url)
    assert len(before) == len(links) and sum(row[3] for row in before) == sum(range(len(links)))

    output = run_migrate_step({"DB_URL": db_url})
    assert "(head)" in output and output.count("\n") == 1, output
    assert schema.current(db_url) == schema.heads()
    assert rows(db_url) == before, "every key, target, admin secret hash, click count, state and time kept"

    with uvicorn_server({"DB_URL": db_url, "BASE_URL": "http://short.test"}, tmp_path / "new.log") as new:
        assert_served_as_before(new.url, links)
        with httpx.Client(base_url=new.url) as client:
            assert client.get(admin_path(links[0])).json()["expires_at"] is None


def test_release_1_keeps_serving_on_the_new_schema(release_1: Path, db_url: str, tmp_path: Path) -> None:
    """Expand first: during a rolling update the old code runs on the migrated database."""
    assert schema.current(db_url) == schema.heads()
    with serve_release_1(release_1, db_url, tmp_path / "release-1.log") as old:
        links = fill(old.url)
        assert_served_as_before(old.url, links)
        assert old.stop() == 0
    assert "Traceback" not in (tmp_path / "release-1.log").read_text()


def test_a_downgrade_to_revision_1_loses_the_expiries_and_nothing_else(
    release_1: Path, db_url: str, tmp_path: Path
) -> None:
    env = {"DB_URL": db_url, "BASE_URL": "http://short.test"}
    with uvicorn_server(env, tmp_path / "new.log") as new:
        links = fill(new.url)
        with httpx.Client(base_url=new.url) as client:
            admin = admin_path(links[1])
            assert client.patch(admin, json={"expires_at": "2100-01-01T00:00:00Z"}).status_code == 200
        assert new.stop() == 0
    before = rows(db_url)

    downgrade = subprocess.run(
        [sys.executable, "-m", "shortener_app.migrate", "--downgrade", schema.BASELINE],
        cwd=ROOT, env={**os.environ, "DB_URL": db_url}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert downgrade.returncode == 0 and downgrade.stdout.count("\n") == 1, downgrade.stdout + downgrade.stderr
    assert schema.current(db_url) == (schema.BASELINE,)
    assert "expires_at" not in columns(db_url)
    assert rows(db_url) == before
    with serve_release_1(release_1, db_url, tmp_path / "release-1.log") as old:
        assert_served_as_before(old.url, links)

    run_migrate_step({"DB_URL": db_url})
    with uvicorn_server(env, tmp_path / "again.log", migrate=False) as again, httpx.Client(base_url=again.url) as c:
        assert c.get(admin_path(links[1])).json()["expires_at"] is None, "the expiry is lost"
