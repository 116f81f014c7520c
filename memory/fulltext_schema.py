"""DDL of the full-text indexes, shared by the migrations that create and re-create them.

SQLite: an external-content FTS5 table per indexed table, kept in step by triggers.
PostgreSQL: a stored generated `search` tsvector column with a GIN index.
"""

from __future__ import annotations

from alembic import op


def create_sqlite_fts(fts: str, table: str, columns: tuple[str, ...], tokenizer: str) -> None:
    """The FTS5 table `fts` over `columns` of `table`, its triggers, and the index of the rows
    already stored."""
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', "
        f"content_rowid='id', tokenize='{tokenizer}')"
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


def drop_sqlite_fts(fts: str) -> None:
    for action in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {fts}_{action}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")


def create_postgres_tsvector(table: str, config: str, expression: str) -> None:
    # A stored generated column is computed for existing rows when added: that is the backfill.
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN search tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('{config}', {expression})) STORED"
    )
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING GIN (search)")


def drop_postgres_tsvector(table: str) -> None:
    op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
    op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search")
