"""Usage of the model per person, conversation, model and day; rate events for per-minute limits.

Revision ID: 0009_usage
Revises: 0009_document_hash
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_usage"
down_revision = "0009_document_hash"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reply_tokens", sa.BigInteger(), nullable=False),
        sa.Column("estimated_calls", sa.Integer(), nullable=False),
        sa.UniqueConstraint("day", "platform", "user_id", "conversation_id", "model", "kind"),
    )
    op.create_index("ix_usage_platform_user_id_day", "usage", ["platform", "user_id", "day"])
    op.create_index("ix_usage_day", "usage", ["day"])
    op.create_table(
        "rate_events",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_rate_events_platform_user_id_at", "rate_events", ["platform", "user_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("rate_events")
    op.drop_table("usage")
