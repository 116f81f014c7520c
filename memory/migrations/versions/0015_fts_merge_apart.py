"""SQLite: the messages' search index no longer merges its segments inside the INSERT that
stores a message; the running bot merges them apart, between replies (memory/index_merging.py),
two at a time as before (`usermerge`, the segments a level holds before its `'merge'` command
merges them, takes the place of `automerge`).

Revision ID: 0015_fts_merge_apart
Revises: 0014_inbound_open
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from memory.fulltext_schema import AUTOMERGE, automerge_sqlite_fts, usermerge_sqlite_fts

revision = "0015_fts_merge_apart"
down_revision = "0014_inbound_open"
branch_labels = None
depends_on = None

_FTS5_USERMERGE = 4  # FTS5's default


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    usermerge_sqlite_fts("messages_fts", AUTOMERGE)
    automerge_sqlite_fts("messages_fts", 0)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    automerge_sqlite_fts("messages_fts", AUTOMERGE)
    usermerge_sqlite_fts("messages_fts", _FTS5_USERMERGE)
