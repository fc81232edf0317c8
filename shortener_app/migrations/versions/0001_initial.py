"""The tables of release 1.0.0, exactly as its models made them with create_all.

A database that release created has these tables but no alembic_version: the migrate step
recognises it and records it as at this revision instead of creating anything (schema.py).

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat")),
    )
    op.create_table(
        "short_urls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("admin_hash", sa.String(length=64), nullable=False),
        sa.Column("target_url", sa.String(length=2048), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_short_urls")),
        sa.UniqueConstraint("admin_hash", name=op.f("uq_short_urls_admin_hash")),
        sa.UniqueConstraint("key", name=op.f("uq_short_urls_key")),
    )


def downgrade() -> None:
    op.drop_table("short_urls")
    op.drop_table("heartbeat")
