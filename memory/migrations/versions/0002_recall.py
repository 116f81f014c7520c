"""Recall: full-text index of messages, shared documents, rolling summaries.

SQLite gets FTS5 tables kept in step by triggers; PostgreSQL gets generated tsvector columns
with GIN indexes. Both index what is already stored (backfill), so old history is recallable.
The 'simple' configuration / unicode61 tokenizer do no stemming, which keeps them usable for
any language (Korean included).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from memory.fulltext_schema import (
    create_postgres_tsvector,
    create_sqlite_fts,
    drop_postgres_tsvector,
    drop_sqlite_fts,
)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (FTS table, content table, indexed columns). conversation_id is indexed as a token so a
# MATCH is restricted to one conversation inside the index, before ranking.
_FTS = (
    ("messages_fts", "messages", ("content", "author_name", "conversation_id")),
    ("passages_fts", "document_passages", ("content", "conversation_id")),
)


def upgrade() -> None:
    op.create_index("ix_messages_author_id", "messages", ["author_id"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_table(
        "documents",
        sa.Column("id", big_id, primary_key=True),
        sa.Column(
            "conversation_id",
            big_id,
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("author_id", sa.String(128), nullable=False),
        sa.Column("author_name", sa.String(256), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_documents_conversation_id", "documents", ["conversation_id"])
    op.create_index("ix_documents_author_id", "documents", ["author_id"])
    op.create_index("ix_documents_created_at", "documents", ["created_at"])
    op.create_table(
        "document_passages",
        sa.Column("id", big_id, primary_key=True),
        sa.Column(
            "document_id", big_id, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("conversation_id", big_id, nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
    )
    op.create_index("ix_document_passages_document_id", "document_passages", ["document_id"])
    op.create_table(
        "summaries",
        sa.Column(
            "conversation_id",
            big_id,
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("covers_until", big_id, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for fts, table, columns in _FTS:
            create_sqlite_fts(fts, table, columns, "unicode61 remove_diacritics 2")
    else:
        create_postgres_tsvector("messages", "simple", "author_name || ' ' || content")
        create_postgres_tsvector("document_passages", "simple", "content")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, _table, _columns in _FTS:
            drop_sqlite_fts(fts)
    else:
        drop_postgres_tsvector("messages")
    op.drop_table("summaries")
    op.drop_table("document_passages")
    op.drop_table("documents")
    op.drop_index("ix_messages_created_at", "messages")
    op.drop_index("ix_messages_author_id", "messages")
