"""Re-index for recall: analyzed Korean/Chinese/Japanese words and stemmed English.

Adds a `terms` column to messages and document passages (memory/analysis.py: Korean morphemes,
CJK bigrams; NULL for text without those scripts), fills it for every stored row, and rebuilds
the full-text indexes over content + terms: FTS5 with the Porter stemmer on SQLite, the
'english' configuration on PostgreSQL (the same stemming, for queries too). Existing databases
are re-indexed here, in batches; only rows with CJK text need analysis.

Revision ID: 0008_recall_index
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from memory.analysis import index_terms
from memory.fulltext_schema import (
    create_postgres_tsvector,
    create_sqlite_fts,
    drop_postgres_tsvector,
    drop_sqlite_fts,
)

revision = "0008_recall_index"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_BATCH = 5_000
_TABLES = {"messages": "messages_fts", "document_passages": "passages_fts"}
# (FTS columns, PostgreSQL tsvector expression), before and after this revision.
_BEFORE = {
    "messages": (("content", "author_name", "conversation_id"), "author_name || ' ' || content"),
    "document_passages": (("content", "conversation_id"), "content"),
}
_AFTER = {
    "messages": (
        ("content", "author_name", "terms", "conversation_id"),
        "author_name || ' ' || content || ' ' || coalesce(terms, '')",
    ),
    "document_passages": (
        ("content", "terms", "conversation_id"),
        "content || ' ' || coalesce(terms, '')",
    ),
}


def _drop_indexes(sqlite: bool) -> None:
    for table, fts in _TABLES.items():
        if sqlite:
            drop_sqlite_fts(fts)
        else:
            drop_postgres_tsvector(table)


def _backfill(table: str) -> None:
    """`terms` of every stored row, in id order, a batch at a time."""
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id"), sa.column("content"), sa.column("terms"))
    last, analyzed = 0, 0
    while True:
        batch = bind.execute(
            sa.select(rows.c.id, rows.c.content)
            .where(rows.c.id > last)
            .order_by(rows.c.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            break
        last = batch[-1].id
        updates = [
            {"row_id": row.id, "terms": terms}
            for row in batch
            if (terms := index_terms(row.content)) is not None
        ]
        if updates:
            bind.execute(
                rows.update()
                .where(rows.c.id == sa.bindparam("row_id"))
                .values(terms=sa.bindparam("terms")),
                updates,
            )
            analyzed += len(updates)
    if analyzed:
        log.info("re-indexed %d rows of %s for Korean/CJK search", analyzed, table)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Indexes first: otherwise every filled row would be re-indexed the old way on the way.
    _drop_indexes(sqlite)
    for table, fts in _TABLES.items():
        op.add_column(table, sa.Column("terms", sa.Text(), nullable=True))
        _backfill(table)
        columns, expression = _AFTER[table]
        if sqlite:
            create_sqlite_fts(fts, table, columns, "porter unicode61 remove_diacritics 2")
        else:
            create_postgres_tsvector(table, "english", expression)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _drop_indexes(sqlite)
    for table, fts in _TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column("terms")
        columns, expression = _BEFORE[table]
        if sqlite:
            create_sqlite_fts(fts, table, columns, "unicode61 remove_diacritics 2")
        else:
            create_postgres_tsvector(table, "simple", expression)
