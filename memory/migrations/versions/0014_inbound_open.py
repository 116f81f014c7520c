"""The inbound queue's claim reads partial indexes of open items (pending or being answered),
in place of an index of every item's state: its plan no longer depends on PostgreSQL having
analyzed the table, and its cost not on how many finished items the table keeps.

Revision ID: 0014_inbound_open
Revises: 0013_fts_automerge
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_inbound_open"
down_revision = "0013_fts_automerge"
branch_labels = None
depends_on = None

# As memory/tables.py writes it (a partial index is used only for a query that repeats it).
_OPEN_ITEM = sa.text("state IN ('pending', 'answering')")


def upgrade() -> None:
    for name, columns in (
        ("ix_inbound_open_id", ["id"]),
        ("ix_inbound_open_conversation", ["conversation", "order_key"]),
    ):
        op.create_index(
            name, "inbound", columns, postgresql_where=_OPEN_ITEM, sqlite_where=_OPEN_ITEM
        )
    op.drop_index("ix_inbound_state_id", "inbound")


def downgrade() -> None:
    op.create_index("ix_inbound_state_id", "inbound", ["state", "id"])
    op.drop_index("ix_inbound_open_conversation", "inbound")
    op.drop_index("ix_inbound_open_id", "inbound")
