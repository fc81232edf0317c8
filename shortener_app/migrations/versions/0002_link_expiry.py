"""An optional expiry per link: short_urls.expires_at, NULL for every link made before.

Expand only: a nullable column release 1.0.0's code never reads or writes, so that code keeps
serving on this schema while a rolling update replaces it. Downgrade drops the column, and with it
every expiry set since (docs/app.md).

Revision ID: 0002_link_expiry
Revises: 0001_initial
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0002_link_expiry"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("short_urls") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # On SQLite the batch copies the table without the column (constraint names kept).
    with op.batch_alter_table("short_urls") as batch_op:
        batch_op.drop_column("expires_at")
