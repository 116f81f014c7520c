"""`/listen`: a channel's top-level conversation can be set to answer every message there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The server default turns the existing conversations' flag off.
    op.add_column(
        "conversations",
        sa.Column("listening", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # batch: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("listening")
