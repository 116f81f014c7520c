"""Embedding vectors of messages and document passages, for semantic recall.

Vectors are packed little-endian float32 bytes: portable across SQLite and PostgreSQL without
extensions. Each row cascades from its message or passage (and conversation), so forgetting,
retention and deleted documents take the vectors with them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (vector table, the table whose rows it describes: `id` is theirs)
_VECTORS = (("message_vectors", "messages"), ("passage_vectors", "document_passages"))


def upgrade() -> None:
    # The indexer walks a conversation's passages by id, as it does messages.
    op.create_index(
        "ix_document_passages_conversation_id_id", "document_passages", ["conversation_id", "id"]
    )
    for table, described in _VECTORS:
        op.create_table(
            table,
            sa.Column(
                "id", big_id, sa.ForeignKey(f"{described}.id", ondelete="CASCADE"), primary_key=True
            ),
            sa.Column(
                "conversation_id",
                big_id,
                sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("model", sa.String(128), nullable=False),
            sa.Column("vector", sa.LargeBinary(), nullable=False),
        )
        op.create_index(
            f"ix_{table}_conversation_id_model_id", table, ["conversation_id", "model", "id"]
        )


def downgrade() -> None:
    for table, _described in _VECTORS:
        op.drop_table(table)
    op.drop_index("ix_document_passages_conversation_id_id", "document_passages")
