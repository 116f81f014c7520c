"""DDL of the full-text indexes, shared by the migrations that create and re-create them.

SQLite: an external-content FTS5 table per indexed table, kept in step by triggers.
PostgreSQL: a stored generated `search` tsvector column with a GIN index; messages' words are
also kept in a table keyed for recall (0012_message_words).
"""

from __future__ import annotations

from alembic import op

# FTS5 keeps an index as b-tree segments on levels and merges a level's segments once it holds
# this many (FTS5's default: 4). Each search word seeks into every segment: with 4, a million
# messages stored one by one left 17 segments, with 2 about 8 (up to 12 between merges), and
# recall's statement took ~1.3 instead of ~1.55 ms of CPU (~1.2 with one segment), for ~5 µs
# more per stored message (~65 → ~70 µs of FTS work), about the same per imported batch.
AUTOMERGE = 2


def automerge_sqlite_fts(fts: str, segments: int = AUTOMERGE) -> None:
    op.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('automerge', {int(segments)})")


def usermerge_sqlite_fts(fts: str, segments: int) -> None:
    op.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('usermerge', {int(segments)})")


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
    automerge_sqlite_fts(fts)
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


# PostgreSQL's word index of messages (migration 0012_message_words): every lexeme of a
# message's `search` tsvector, keyed so that a word's newest ids in a conversation are read from
# the primary key alone (memory/ranking.py). Words compare bytewise ("C"): a prefix is a range.
WORDS_KEY = "message_words_pkey"
ADD_WORDS_KEY = (
    f"ALTER TABLE message_words ADD CONSTRAINT {WORDS_KEY} PRIMARY KEY (conversation_id, word, id)"
)
_WORDS_OF = "SELECT conversation_id, unnest(tsvector_to_array(search)) AS word, id FROM"
_WORD_TRIGGERS = {
    # Statement triggers over the changed rows: one insert per COPY batch of an import.
    "insert": (
        "AFTER INSERT ON messages REFERENCING NEW TABLE AS changed FOR EACH STATEMENT",
        f"INSERT INTO message_words (conversation_id, word, id) {_WORDS_OF} changed",
    ),
    "delete": (
        "AFTER DELETE ON messages REFERENCING OLD TABLE AS changed FOR EACH STATEMENT",
        f"DELETE FROM message_words AS w USING ({_WORDS_OF} changed) AS c "
        "WHERE w.conversation_id = c.conversation_id AND w.word = c.word AND w.id = c.id",
    ),
    # Parley never updates a message's text; a row trigger keeps words right if someone does
    # (a statement trigger with transition tables cannot be limited to the indexed columns).
    "update": (
        "AFTER UPDATE ON messages FOR EACH ROW WHEN (old.search IS DISTINCT FROM new.search "
        "OR old.conversation_id <> new.conversation_id OR old.id <> new.id)",
        "DELETE FROM message_words WHERE conversation_id = old.conversation_id "
        "AND word = ANY (tsvector_to_array(old.search)) AND id = old.id; "
        "INSERT INTO message_words (conversation_id, word, id) SELECT new.conversation_id, "
        "unnest(tsvector_to_array(new.search)), new.id",
    ),
}


def create_message_words() -> None:
    """The word table, filled from the stored messages, and the triggers that keep it (they
    read `messages.search`: a migration re-creating that column must re-fill this table)."""
    op.execute(
        "CREATE TABLE message_words (conversation_id bigint NOT NULL, "
        'word text COLLATE "C" NOT NULL, id bigint NOT NULL)'
    )
    op.execute(f"INSERT INTO message_words (conversation_id, word, id) {_WORDS_OF} messages")
    op.execute(ADD_WORDS_KEY)  # built after the rows: sorted once rather than grown row by row
    # Reads are index-only scans, which visit the heap for pages not yet marked all-visible:
    # vacuumed every 100,000 new words, not after a fifth of the table (the default).
    op.execute(
        "ALTER TABLE message_words SET (autovacuum_vacuum_insert_scale_factor = 0, "
        "autovacuum_vacuum_insert_threshold = 100000)"
    )
    for action, (when, body) in _WORD_TRIGGERS.items():
        op.execute(
            f"CREATE FUNCTION message_words_{action}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {body}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER message_words_{action} {when} "
            f"EXECUTE FUNCTION message_words_{action}()"
        )


def drop_message_words() -> None:
    for action in _WORD_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS message_words_{action} ON messages")
        op.execute(f"DROP FUNCTION IF EXISTS message_words_{action}()")
    op.execute("DROP TABLE IF EXISTS message_words")
