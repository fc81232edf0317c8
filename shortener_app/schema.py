"""The database schema's revision: bring it to head (the migrate step), and check it at start.

Only the one-shot migrate step (`python -m shortener_app.migrate`) changes the schema. The serving
processes check it: a database behind this code's head, or without a schema, stops the start with
one line that names the command to run, and its form in a container (main.py, through StartupCheck).
A database at a revision this code does not know was migrated by a newer release; this code runs on
it, because every revision expands first (adds what old code ignores) and removes only in a later
release.
"""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .database import make_engine, sqlite_file

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_COMMAND = "python -m shortener_app.migrate"
# The revision that equals release 1.0.0's tables, which it made with create_all and did not record.
BASELINE = "0001_initial"
BASELINE_COLUMNS = {
    "short_urls": {"id", "key", "admin_hash", "target_url", "clicks", "is_active", "created_at"},
    "heartbeat": {"id", "checked_at"},
}


class SchemaError(RuntimeError):
    """The migrate step cannot bring this database to head; the message says why."""


class Unreachable(RuntimeError):
    """The database server did not answer, refused the connection, or is still starting: a fault that
    passes, unlike a wrong password or database name (those have a SQLSTATE of their own)."""


# "the database system is starting up" (and shutting down): it will answer soon.
PASSING_SQLSTATES = {None, "57P01", "57P03"}


def unreachable(error: SQLAlchemyError) -> bool:
    return isinstance(error, OperationalError) and getattr(error.orig, "sqlstate", "") in PASSING_SQLSTATES


def config(db_url: str) -> Config:
    settings = Config()
    settings.set_main_option("script_location", str(MIGRATIONS))
    settings.attributes["db_url"] = db_url
    return settings


def heads() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(config("")).get_heads())


def current(db_url: str) -> tuple[str, ...]:
    """The revisions the database is at; () for a database without a schema."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def _names(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) or "none"


def upgrade(db_url: str) -> str:
    """Bring the schema to head; safe to run again, and (on PostgreSQL) twice at once. Says what it did."""
    before = current(db_url)
    if not before:
        _adopt_release_1(db_url)
    command.upgrade(config(db_url), "head")
    after = current(db_url)
    where = make_url(db_url).render_as_string(hide_password=True)
    if after == before:
        return f"schema of {where} at {_names(after)} (head): nothing to do"
    return f"schema of {where} migrated from {_names(before)} to {_names(after)} (head)"


def downgrade(db_url: str, revision: str) -> str:
    before = current(db_url)
    command.downgrade(config(db_url), revision)
    where = make_url(db_url).render_as_string(hide_password=True)
    return f"schema of {where} downgraded from {_names(before)} to {_names(current(db_url))}"


def _adopt_release_1(db_url: str) -> None:
    """A database release 1.0.0 made (its tables, no alembic_version) is recorded as at BASELINE."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables = set(inspector.get_table_names())
            if not tables & BASELINE_COLUMNS.keys():
                return  # an empty database: the revisions create everything
            found = {table: {c["name"] for c in inspector.get_columns(table)} for table in tables}
    finally:
        engine.dispose()
    if {table: found.get(table) for table in BASELINE_COLUMNS} != BASELINE_COLUMNS:
        raise SchemaError(
            f"the database has tables but no recorded revision, and they are not release 1.0.0's "
            f"({sorted(tables)}): bring it to {BASELINE} by hand, then `alembic stamp {BASELINE}`"
        )
    command.stamp(config(db_url), BASELINE)
    logger.info("tables made by release 1.0.0 found: recorded as %s", BASELINE)


def problem(db_url: str) -> str | None:
    """Why this code must not serve on this database, in one line; None when the schema is at head."""
    database = sqlite_file(db_url)
    if database is not None and not database.exists():
        return f"no database at {database.absolute()}: {_run_migrate_first(db_url)}"
    try:
        found = current(db_url)
    except SQLAlchemyError as error:
        if unreachable(error):
            raise Unreachable(_first_line(error)) from None
        return f"cannot read the database's schema revision ({_first_line(error)}); the app did not start."
    wanted = heads()
    if found == wanted:
        return None
    if not found:
        return f"the database has no schema: {_run_migrate_first(db_url)}"
    script = ScriptDirectory.from_config(config(db_url))
    known = {revision.revision for revision in script.walk_revisions()}
    if not set(found) <= known:
        # A newer release migrated it (expand first): serve, and say so once.
        logger.warning("the database is at %s, newer than this code's %s", _names(found), _names(wanted))
        return None
    return f"the database schema is at {_names(found)}, this code needs {_names(wanted)}: {_run_migrate_first(db_url)}"


def _first_line(error: SQLAlchemyError) -> str:
    return str(error.orig if getattr(error, "orig", None) else error).strip().splitlines()[0]


def _run_migrate_first(db_url: str) -> str:
    """The command to run, and its container form: the same image on the same data, or else a fresh
    anonymous volume (the image declares VOLUME /data) is migrated, and `--rm` deletes it."""
    database = sqlite_file(db_url)
    same_data = f"-v <volume>:{database.absolute().parent}" if database is not None else "-e DB_URL=<the same URL>"
    return (
        f"run `{MIGRATE_COMMAND}` first, then start the app "
        f"(in a container: docker run --rm {same_data} <image> {MIGRATE_COMMAND})."
    )
