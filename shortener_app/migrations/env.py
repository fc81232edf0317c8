"""How Alembic reaches the database: the app's own settings (DB_URL) and the app's own engine.

Run by `python -m shortener_app.migrate` (the deployment's one-shot step) and by the `alembic`
command in a checkout (`[tool.alembic]` in pyproject.toml), which a developer uses to write a revision:
`alembic revision --autogenerate -m "what changes"`, then reads and edits what it wrote.
"""

from alembic import context
from sqlalchemy import Connection

from shortener_app import models  # noqa: F401 - registers the tables on Base.metadata
from shortener_app.config import get_settings
from shortener_app.database import Base, make_engine

# Any fixed number: every migrate step of every deployment of this app takes the same lock.
POSTGRES_LOCK_ID = 0x5_0A7_EA5E

config = context.config


def db_url() -> str:
    # schema.py hands the URL over as an attribute: a URL's % would trip the ini-style options.
    return config.attributes.get("db_url") or get_settings().db_url


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot alter most of a table in place: batch operations copy it instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two migrate steps at once (a Job retried while the first still runs, two deploys)
            # take turns: the second finds the schema at head and does nothing. Released at commit.
            context.execute(f"SELECT pg_advisory_xact_lock({POSTGRES_LOCK_ID})")
        context.run_migrations()


if context.is_offline_mode():
    # `alembic upgrade head --sql`: the SQL for a DBA to review or run, without a connection.
    context.configure(url=db_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run(given)
else:
    engine = make_engine(db_url())
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()
