"""Token-count calibration per model and script, learnt from the server's usage reports.

Revision ID: 0007_calibration
Revises: 0006_channel_kind
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_calibration"
down_revision = "0006_channel_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("script", sa.String(16), primary_key=True),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
