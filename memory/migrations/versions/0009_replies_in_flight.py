"""Replies in flight: the platform ids of a reply's posted messages, kept until it is delivered,
so the next start can mend a reply left half-shown ("Thinking…", a half reply).

Revision ID: 0009_replies_in_flight
Revises: 0009_usage
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_replies_in_flight"
down_revision = "0009_usage"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "replies_in_flight",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("posted", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_replies_in_flight_platform", "replies_in_flight", ["platform"])


def downgrade() -> None:
    op.drop_index("ix_replies_in_flight_platform", "replies_in_flight")
    op.drop_table("replies_in_flight")
