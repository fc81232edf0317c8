"""Reading and writing links; each function is one short transaction."""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import keygen
from .database import NAMING_CONVENTION
from .models import Heartbeat, ShortURL

logger = logging.getLogger(__name__)

# At 62**7 keys, a second collision in a row means something else is wrong.
MAX_KEY_ATTEMPTS = 5
# How each database names a violation of the key's unique constraint. PostgreSQL's driver gives the
# constraint's name (the naming convention's, the same on every database); sqlite3 only a message.
KEY_CONSTRAINT = NAMING_CONVENTION["uq"] % {"table_name": ShortURL.__tablename__, "column_0_name": "key"}
SQLITE_KEY_CONFLICT = f"UNIQUE constraint failed: {ShortURL.__tablename__}.key"


class KeyTaken(Exception):
    """The custom key is in use, or was used by a link now deactivated."""


class NoFreeKey(RuntimeError):
    """Every random key drawn was taken: the keys of this length are nearly all used, or the draw is
    broken. Retrying will not help: the web layer answers a JSON 500 (routes.py), not a 503."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f'no free key found after {attempts} attempts; a key of your own ("key") may still be free')


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and utc(expires_at) <= datetime.now(UTC)


def create(
    session: Session, target_url: str, key: str | None, key_length: int, expires_at: datetime | None = None
) -> tuple[ShortURL, str]:
    """Insert a link and return it with its admin secret, which is not stored anywhere.

    The unique constraint decides whether a key is free: insert, and draw again on
    conflict. Checking first and inserting after would race with a concurrent insert.
    Only a conflict on the key means that: any other IntegrityError (an id the sequence hands
    out again after a data copy, say) is raised as it is, a database fault (errors.py: JSON 503).
    """
    secret = keygen.new_admin_secret()
    for _attempt in range(MAX_KEY_ATTEMPTS):
        row = ShortURL(
            key=key or keygen.random_key(key_length),
            admin_hash=keygen.hash_secret(secret),
            target_url=target_url,
            expires_at=expires_at,
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError as error:
            session.rollback()
            if not is_key_conflict(error):
                raise
            if key is not None:
                raise KeyTaken(key) from None
            logger.warning("random key collided, drawing another")
            continue
        logger.info("created link key=%s", row.key)
        return row, secret
    logger.error("no free key after %d attempts at length %d: lengthen KEY_LENGTH", MAX_KEY_ATTEMPTS, key_length)
    raise NoFreeKey(MAX_KEY_ATTEMPTS)


def is_key_conflict(error: IntegrityError) -> bool:
    """Whether the insert failed because the key is taken, and not on another constraint."""
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if constraint is not None:
        return constraint == KEY_CONSTRAINT
    return str(error.orig) == SQLITE_KEY_CONFLICT


def by_secret(session: Session, secret: str) -> ShortURL | None:
    return session.scalar(select(ShortURL).where(ShortURL.admin_hash == keygen.hash_secret(secret)))


def deactivate(session: Session, secret: str) -> ShortURL | None:
    row = by_secret(session, secret)
    if row is not None and row.is_active:
        row.is_active = False
        session.commit()
        logger.info("deactivated link key=%s", row.key)
    return row


def set_expiry(session: Session, secret: str, expires_at: datetime | None) -> ShortURL | None:
    row = by_secret(session, secret)
    if row is not None:
        row.expires_at = expires_at
        session.commit()
        logger.info("link key=%s expires at %s", row.key, expires_at)
    return row


def active_link(session: Session, key: str) -> tuple[str, datetime | None] | None:
    """The target and expiry of the active link with this key (expired or not); None when there is none."""
    found = session.execute(
        select(ShortURL.target_url, ShortURL.expires_at).where(ShortURL.key == key, ShortURL.is_active)
    ).first()
    return None if found is None else (found.target_url, found.expires_at and utc(found.expires_at))


def add_clicks(connection: Connection, counts: Mapping[str, int]) -> None:
    """Add each count in the database itself (`clicks = clicks + n`): no read-modify-write.

    On a connection whose transaction the caller commits, so it can bound the wait for locks first.
    """
    table = ShortURL.__table__
    statement = update(table).where(table.c.key == bindparam("k")).values(clicks=table.c.clicks + bindparam("n"))
    connection.execute(statement, [{"k": key, "n": n} for key, n in counts.items()])


def read_and_write(session: Session) -> None:
    """What the health check asks of the database: read the links table, and commit a write."""
    session.execute(select(ShortURL.id).limit(1))
    beat = session.get(Heartbeat, 1)
    if beat is None:
        session.add(Heartbeat(id=1, checked_at=datetime.now(UTC)))
    else:
        beat.checked_at = datetime.now(UTC)
    session.commit()
