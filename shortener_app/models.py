"""The tables."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from .database import Base

KEY_MAX_LENGTH = 64
TARGET_MAX_LENGTH = 2048


class ShortURL(Base):
    """One short link. Rows are never deleted, so a key is never handed out twice."""

    __tablename__ = "short_urls"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX_LENGTH), unique=True)
    # SHA-256 of the admin secret, hex; the secret itself is never stored.
    admin_hash: Mapped[str] = mapped_column(String(64), unique=True)
    target_url: Mapped[str] = mapped_column(String(TARGET_MAX_LENGTH))
    clicks: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    # Revision 0002: from this moment on the link answers 410 Gone; NULL (every older link) never expires.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Heartbeat(Base):
    """One row the health check rewrites, to prove the database still takes writes."""

    __tablename__ = "heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
