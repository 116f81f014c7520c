"""Documents carry the SHA-256 of their bytes: the same file shared twice in a conversation is
stored once.

Revision ID: 0009_document_hash
Revises: 0010_bounded_search
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_document_hash"
down_revision = "0010_bounded_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: documents stored before this have no hash (and never match one).
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(64), nullable=True))
        batch.create_index(
            "ix_documents_conversation_id_content_sha256",
            ["conversation_id", "content_sha256"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_conversation_id_content_sha256")
        batch.drop_column("content_sha256")
