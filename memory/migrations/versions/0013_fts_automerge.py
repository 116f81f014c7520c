"""SQLite: the full-text indexes kept in fewer segments, so that recall seeks into fewer
(memory/fulltext_schema.py AUTOMERGE); the existing ones are merged into one segment now
(~2 s at a million messages, once).

Revision ID: 0013_fts_automerge
Revises: 0012_message_words
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from memory.fulltext_schema import automerge_sqlite_fts

revision = "0013_fts_automerge"
down_revision = "0012_message_words"
branch_labels = None
depends_on = None

_INDEXES = ("messages_fts", "passages_fts")
_FTS5_DEFAULT = 4


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for fts in _INDEXES:
        automerge_sqlite_fts(fts)
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('optimize')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for fts in _INDEXES:
        automerge_sqlite_fts(fts, _FTS5_DEFAULT)
