"""The inbound queue: every message a platform delivered, stored before it is acknowledged and
answered from here in the platform's order; it replaces `processed_events` as the one record of
re-deliveries. Replies in flight name the process showing them, so another process can tell
those of a dead one (no live claim) from its own, and keep their final text once it is ready, so
a process stopped during the last edit leaves the answer shown, not a notice.

Revision ID: 0011_inbound
Revises: 0009_replies_in_flight
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_inbound"
down_revision = "0009_replies_in_flight"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("event_key", sa.String(256), nullable=False),
        sa.Column("conversation", sa.String(512), nullable=False),
        sa.Column("order_key", sa.String(40), nullable=False),
        sa.Column("lane", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("platform", "event_key"),
    )
    op.create_index("ix_inbound_conversation_order_key", "inbound", ["conversation", "order_key"])
    op.create_index("ix_inbound_state_id", "inbound", ["state", "id"])
    op.drop_table("processed_events")
    with op.batch_alter_table("replies_in_flight") as table:
        table.add_column(sa.Column("owner", sa.String(64), nullable=True))
        table.add_column(sa.Column("final", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replies_in_flight") as table:
        table.drop_column("final")
        table.drop_column("owner")
    op.create_table(
        "processed_events",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.drop_index("ix_inbound_state_id", "inbound")
    op.drop_index("ix_inbound_conversation_order_key", "inbound")
    op.drop_table("inbound")
