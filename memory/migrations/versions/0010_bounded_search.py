"""PostgreSQL indexes a bounded prefix of each message and passage: a `tsvector` holds at most
1 MB, and a longer text made the whole insert fail ("string is too long for tsvector").

Revision ID: 0010_bounded_search
Revises: 0007_calibration
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

from memory.fulltext_schema import create_postgres_tsvector, drop_postgres_tsvector

revision = "0010_bounded_search"
down_revision = "0007_calibration"
branch_labels = None
depends_on = None

# Characters indexed per row, of the content and of its analyzed terms. Measured with
# 'english': all-distinct Korean words take 4.3 bytes of tsvector per character (Latin ones
# 2), so 100,000 + 100,000 characters stay under the 1 MB limit with room to spare.
CONTENT_CHARS = 100_000
TERMS_CHARS = 100_000
_CONTENT = f"left(content, {CONTENT_CHARS}) || ' ' || left(coalesce(terms, ''), {TERMS_CHARS})"
# (expression after this revision, before it: 0008_recall_index's)
_EXPRESSIONS = {
    "messages": (
        f"author_name || ' ' || {_CONTENT}",
        "author_name || ' ' || content || ' ' || coalesce(terms, '')",
    ),
    "document_passages": (_CONTENT, "content || ' ' || coalesce(terms, '')"),
}


def _rebuild(after: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's FTS5 has no such limit
    for table, (bounded, unbounded) in _EXPRESSIONS.items():
        # A generated column cannot be altered in place: dropped (with its index), added anew.
        drop_postgres_tsvector(table)
        create_postgres_tsvector(table, "english", bounded if after else unbounded)


def upgrade() -> None:
    _rebuild(after=True)


def downgrade() -> None:
    _rebuild(after=False)
