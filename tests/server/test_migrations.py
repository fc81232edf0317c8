"""Alembic owns the schema: the revisions equal the models, one migrate step brings a database to
head, and a server never starts (nor half-starts) on a schema that is not at head."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from shortener_app import models, schema
from shortener_app.database import Base, make_engine, sqlite_file
from tests.helpers.repo import ROOT
from tests.helpers.server import run_migrate_step, uvicorn_server

MIGRATE = [sys.executable, "-m", "shortener_app.migrate"]


def migrate_step(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MIGRATE, *args], cwd=ROOT, env={**os.environ, "DB_URL": db_url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def tables(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_the_migrations_create_exactly_what_the_models_describe(db_url: str) -> None:
    """`alembic check`, in pytest: no difference between the migrated database and models.py."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            inspector = inspect(connection)
            names = {
                "pk": inspector.get_pk_constraint("short_urls")["name"],
                "uq": sorted(c["name"] for c in inspector.get_unique_constraints("short_urls")),
            }
    finally:
        engine.dispose()
    assert differences == [], differences
    # Named by the metadata's convention, the same on every database.
    assert names == {"pk": "pk_short_urls", "uq": ["uq_short_urls_admin_hash", "uq_short_urls_key"]}
    assert models.ShortURL.__table__.c.keys() == inspect_columns(db_url)


def inspect_columns(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return [column["name"] for column in inspect(connection).get_columns("short_urls")]
    finally:
        engine.dispose()


def test_the_migrate_step_is_one_line_and_safe_to_run_twice(empty_db_url: str) -> None:
    first, second = migrate_step(empty_db_url), migrate_step(empty_db_url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.count("\n") == 1 and first.stderr == "", first.stdout + first.stderr
    assert "migrated from none to" in first.stdout and "(head)" in first.stdout
    assert second.stdout.count("\n") == 1 and "nothing to do" in second.stdout, second.stdout
    assert schema.current(empty_db_url) == schema.heads()


def test_the_migrate_step_says_in_one_line_why_it_cannot_reach_the_database(tmp_path: Path) -> None:
    result = migrate_step("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("migrate: failed:") and result.stderr.count("\n") == 1, result.stderr
    assert "secret" not in result.stderr


def refused_start(db_url: str, log: Path, **env: str) -> str:
    """Start the server as the image does, WITHOUT the migrate step; it must exit 3. Its output."""
    with (
        pytest.raises(RuntimeError, match="exited with 3"),
        uvicorn_server({"DB_URL": db_url, **env}, log, migrate=False),
    ):
        pass
    return log.read_text()


def assert_one_line_naming_the_command(output: str) -> None:
    assert "Traceback" not in output, output
    named = [line for line in output.splitlines() if schema.MIGRATE_COMMAND in line]
    assert len(named) == 1, output
    assert "Application startup failed" in output, output
    assert "Uvicorn running" not in output and "Application startup complete" not in output, output


def test_a_server_on_a_database_without_a_schema_refuses_to_start_naming_the_migrate_command(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Before: every process ran create_all at start; now only the migrate step makes tables."""
    output = refused_start(empty_db_url, tmp_path / "server.log")
    assert_one_line_naming_the_command(output)
    database = sqlite_file(empty_db_url)
    if database is not None:
        assert not database.exists(), "the server made a database file"
    else:
        assert tables(empty_db_url) == set(), "the server made tables"


def test_a_server_on_an_old_revision_refuses_to_start_naming_the_migrate_command(
    empty_db_url: str, tmp_path: Path
) -> None:
    older = [rev.revision for rev in schema.ScriptDirectory.from_config(schema.config("")).walk_revisions()][1:]
    if not older:
        pytest.skip("one revision only: no older one to start on")
    schema.upgrade(empty_db_url)
    schema.downgrade(empty_db_url, older[0])
    output = refused_start(empty_db_url, tmp_path / "server.log")
    assert_one_line_naming_the_command(output)
    assert f"at {older[0]}" in output, output
    assert schema.current(empty_db_url) == (older[0],), "the server must not migrate"


def test_with_schema_wait_a_starting_server_waits_for_the_migrate_step_then_serves(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A Swarm stack deploy starts the migrate job and the new replicas together: a replica given
    SCHEMA_WAIT_SECONDS waits for the job, serving nothing meanwhile, instead of failing the update."""
    env = {"DB_URL": empty_db_url, "SCHEMA_WAIT_SECONDS": "30"}
    log = tmp_path / "server.log"

    def migrate_once_the_server_waits() -> None:
        """The migrate job, started when the server says it waits (not after a guessed delay: a slow
        machine's server could reach its check after the job, and would have nothing to wait for)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "waiting up to 30 s" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        run_migrate_step(env)

    migrate = threading.Thread(target=migrate_once_the_server_waits)
    migrate.start()
    try:
        with uvicorn_server(env, log, migrate=False) as server:
            assert httpx.get(f"{server.url}/health").json()["database"] == "ok"
            assert schema.current(empty_db_url) == schema.heads(), "the server answered before the schema was at head"
    finally:
        migrate.join()
    output = (tmp_path / "server.log").read_text()
    assert output.count("waiting up to 30 s for the migrate step") == 1, output
    assert "Application startup failed" not in output, output


def test_with_schema_wait_a_server_still_refuses_once_the_wait_is_over(empty_db_url: str, tmp_path: Path) -> None:
    output = refused_start(empty_db_url, tmp_path / "server.log", SCHEMA_WAIT_SECONDS="2")
    assert_one_line_naming_the_command(output)
