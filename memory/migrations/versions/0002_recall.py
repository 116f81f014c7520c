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
            _sqlite_fts(fts, table, columns)
    else:
        _postgres_tsvector("messages", "author_name || ' ' || content")
        _postgres_tsvector("document_passages", "content")


def _sqlite_fts(fts: str, table: str, columns: tuple[str, ...]) -> None:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', "
        f"content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END"
    )
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def _postgres_tsvector(table: str, expression: str) -> None:
    # A stored generated column is computed for existing rows when added: that is the backfill.
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN search tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('simple', {expression})) STORED"
    )
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING GIN (search)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, _table, _columns in _FTS:
            for action in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{action}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    else:
        op.drop_index("ix_messages_search", "messages")
        op.drop_column("messages", "search")
    op.drop_table("summaries")
    op.drop_table("document_passages")
    op.drop_table("documents")
    op.drop_index("ix_messages_created_at", "messages")
    op.drop_index("ix_messages_author_id", "messages")
