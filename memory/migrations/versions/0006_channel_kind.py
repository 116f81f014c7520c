"""The kind of place a conversation lives in (public channel, private channel, DM, group DM), so
workspace-wide recall can leave private conversations out in its query; each Discord DM becomes
its own workspace (they all shared "dm").

Existing conversations get kind "" (unknown, treated as private) until their next message says,
except DMs, which their keys already tell apart.

Revision ID: 0006_channel_kind
Revises: 0008_recall_index
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_channel_kind"
down_revision = "0008_recall_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations", sa.Column("kind", sa.String(16), nullable=False, server_default="")
    )
    op.execute(
        "UPDATE conversations SET kind = 'dm', workspace = 'dm-' || channel "
        "WHERE platform = 'discord' AND workspace = 'dm'"
    )
    # Slack DM channel ids start with D; the terminal's conversations are its one user's.
    op.execute(
        "UPDATE conversations SET kind = 'dm' WHERE platform = 'slack' AND channel LIKE 'D%'"
    )
    op.execute("UPDATE conversations SET kind = 'channel' WHERE platform = 'terminal'")


def downgrade() -> None:
    op.execute(
        "UPDATE conversations SET workspace = 'dm' "
        "WHERE platform = 'discord' AND workspace = 'dm-' || channel"
    )
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("kind")
