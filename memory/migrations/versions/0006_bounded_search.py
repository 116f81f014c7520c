"""PostgreSQL indexes a bounded prefix of each message and passage: a `tsvector` holds at most
1 MB, and a longer text made the whole insert fail ("string is too long for tsvector").

Revision ID: 0006_bounded_search
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0006_bounded_search"
down_revision = "0005"
branch_labels = None
depends_on = None

# Characters indexed per row. Even all-distinct words take under 2 bytes of tsvector per
# character of text, so this stays well inside the 1 MB limit; recall reads far less anyway.
INDEXED_CHARS = 250_000
_COLUMNS = {
    "messages": "author_name || ' ' || {content}",
    "document_passages": "{content}",
}


def _rebuild(table: str, content: str) -> None:
    # A generated column cannot be altered in place: drop it (and its index), add it anew.
    op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
    op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search")
    expression = _COLUMNS[table].format(content=content)
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN search tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('simple', {expression})) STORED"
    )
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING GIN (search)")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's FTS5 has no such limit
    for table in _COLUMNS:
        _rebuild(table, f"left(content, {INDEXED_CHARS})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _COLUMNS:
        _rebuild(table, "content")
