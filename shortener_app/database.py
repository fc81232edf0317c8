"""The database engine, its per-connection settings, and the declarative base."""

import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, NullPool, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Explicit constraint names, so migrations and error messages are the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 5_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _tune_sqlite(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets readers run while one writer writes; the busy timeout makes a second
    # writer wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # In WAL mode NORMAL is durable against application crashes; only a power cut
    # may lose the last transactions.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# A server that does not answer a connection attempt within this long counts as down.
CONNECT_TIMEOUT_SECONDS = 2


def make_engine(db_url: str, wait: float | None = None) -> Engine:
    """An engine for `db_url`; for SQLite, the file's folder is created if missing.

    `wait` (the serving app's request timeout) bounds every wait a request can meet: for a pooled
    connection, and on PostgreSQL for a statement or a lock. The migrate step passes none: a
    migration may rightly run long. A server that is frozen rather than slow enforces nothing; for
    that, requests stop waiting for their thread (deadline.py)."""
    url = make_url(db_url)
    pool = {} if wait is None else {"pool_timeout": wait}
    if url.get_backend_name() != "sqlite":
        connect: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if wait is not None and "options" not in url.query:
            wait_ms = max(1, int(wait * 1000))
            connect["options"] = f"-c statement_timeout={wait_ms} -c lock_timeout={wait_ms}"
        return create_engine(url, pool_pre_ping=True, connect_args=connect, **pool)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def sqlite_file(db_url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def make_probe_engine(db_url: str, timeout: float) -> Engine:
    """An engine for the health check: a fresh connection per probe (no pool another route can
    exhaust), and every wait for a lock or an answer bounded by `timeout` where the driver can."""
    url = make_url(db_url)
    wait_ms = max(1, int(timeout * 1000))
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute(f"PRAGMA busy_timeout={wait_ms}"))
        return engine
    # libpq counts connect_timeout in whole seconds, at least 2.
    options = f"-c statement_timeout={wait_ms} -c lock_timeout={wait_ms}"
    return create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "options": options}
    )


def wait_for_locks_at_most(connection: Connection, seconds: float | None) -> None:
    """Bound how long the current transaction waits for another writer's lock (None: the default)."""
    if connection.dialect.name == "sqlite":
        wait_ms = SQLITE_BUSY_TIMEOUT_MS if seconds is None else max(1, int(seconds * 1000))
        connection.exec_driver_sql(f"PRAGMA busy_timeout={wait_ms}")
    elif seconds is not None and connection.dialect.name == "postgresql":
        # SET LOCAL ends with the transaction, so the pooled connection goes back unchanged.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
