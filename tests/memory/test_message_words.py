"""PostgreSQL's word table of messages (migration 0012_message_words): filled from the stored
messages, kept right by its triggers through inserts, imports, edits and deletes, and what
message search reads, from the index alone. SQLite keeps FTS5 and has no such table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.db import create_engine, migrate
from memory.keys import ConversationKey
from memory.ranking import ranked_sql
from memory.search import FullText
from memory.store import NewMessage, Store
from memory.transfer import ImportRow, import_rows
from tests.conftest import own_postgres_database
from tests.helpers import GENERAL, RANDOM, downgrade, old_conversation, old_message

_STORED = text("SELECT conversation_id, word, id FROM message_words ORDER BY 1, 2, 3")
# What the table must hold: every word of every message's tsvector.
_EXPECTED = text(
    "SELECT conversation_id, unnest(tsvector_to_array(search)) AS word, id FROM messages "
    "ORDER BY 1, 2, 3"
)


async def _words(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """The word table's rows, after checking they are exactly the messages' words."""
    async with engine.connect() as connection:
        stored = [tuple(row) for row in await connection.execute(_STORED)]
        expected = [tuple(row) for row in await connection.execute(_EXPECTED)]
    assert stored == expected
    return stored


async def _exists(engine: AsyncEngine, name: str) -> bool:
    query = (
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = :name"
        if engine.dialect.name == "sqlite"
        else "SELECT to_regclass(:name) IS NOT NULL"
    )
    async with engine.connect() as connection:
        return bool((await connection.execute(text(query), {"name": name})).scalar_one())


async def test_the_migration_fills_the_table_and_goes_back(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "0011_inbound")
        conversation_id = await old_conversation(engine, GENERAL)
        await old_message(engine, conversation_id, "the kumquat harvest")
        await old_message(engine, conversation_id, "running late again")
        await migrate(engine)
        if engine.dialect.name == "sqlite":
            assert not await _exists(engine, "message_words")  # FTS5 reads this way already
            await downgrade(engine, "0011_inbound")
            await migrate(engine)
            return
        words = {word for _c, word, _id in await _words(engine)}
        assert {"kumquat", "harvest", "run", "late", "alic"} <= words  # stemmed, author too
        assert "the" not in words  # a stop word
        assert not await _exists(engine, "ix_messages_search")  # nothing reads it any more

        await downgrade(engine, "0011_inbound")
        assert not await _exists(engine, "message_words")
        assert await _exists(engine, "ix_messages_search")
        await old_message(engine, conversation_id, "a quince pie")  # no trigger left to fail
        await migrate(engine)
        assert "quinc" in {word for _c, word, _id in await _words(engine)}
    finally:
        await engine.dispose()


def _row(key: ConversationKey, content: str, minute: int) -> ImportRow:
    return ImportRow(
        key,
        {
            "role": "user",
            "author_id": "u-ann",
            "author_name": "Ann",
            "content": content,
            "tokens": 5,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute),
        },
    )


async def test_triggers_keep_the_words_of_every_change() -> None:
    async with own_postgres_database() as url:
        engine = create_engine(url)
        try:
            await migrate(engine)
            store = Store(engine)
            general = await store.conversation(GENERAL)
            added = await store.add(general.id, NewMessage("user", "u", "Ann", "plum jam", 3))
            assert added is not None
            await import_rows(  # COPY, in batches
                engine, [_row(RANDOM, f"pear tart number {n}", n) for n in range(3)]
            )
            assert (
                len(await _words(engine)) == 3 + 3 * 5
            )  # plum, jam, ann; pear, tart, number, n, ann
            random_id = (await store.conversation(RANDOM)).id
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE messages SET content = 'fig roll' WHERE id = :id"), {"id": added}
                )
                # Untouched words: the row trigger does not fire.
                await connection.execute(text("UPDATE messages SET tokens = 7"))
            words = await _words(engine)
            assert (general.id, "fig", added) in words and (general.id, "plum", added) not in words
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE messages SET conversation_id = :c WHERE id = :id"),
                    {"c": random_id, "id": added},
                )
            assert (random_id, "fig", added) in await _words(engine)
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM messages WHERE content LIKE '%1'"))
            assert len(await _words(engine)) == 3 + 2 * 5
            async with engine.begin() as connection:  # the messages go by cascade
                await connection.execute(
                    text("DELETE FROM conversations WHERE id = :c"), {"c": random_id}
                )
            assert await _words(engine) == []
        finally:
            await engine.dispose()


async def test_search_reads_a_words_newest_matches_from_the_index_alone() -> None:
    async with own_postgres_database() as url:
        engine = create_engine(url)
        try:
            await migrate(engine)
            rows = [
                _row(GENERAL, ("kumquat " if n % 5 == 0 else "") + f"note {n % 13} filler", n)
                for n in range(3000)
            ]
            await import_rows(engine, rows)
            conversation_id = (await Store(engine).conversation(GENERAL)).id
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("VACUUM ANALYZE"))  # as autovacuum will have
                ranked, values = ranked_sql(False, "messages", [conversation_id], ["kumquat"])
                plan = "\n".join(
                    str(line)
                    for line in (
                        await connection.execute(
                            text(f"EXPLAIN ANALYZE WITH {ranked} SELECT id FROM ranked")
                            .bindparams(bindparam("conversations", expanding=True))
                            .columns(),
                            values | {"after": 0, "before": 2**62, "limit": 5},
                        )
                    ).scalars()
                )
            assert "Index Only Scan Backward using message_words_pkey" in plan
            assert "Heap Fetches: 0" in plan
            assert "rows=200 loops=1" in plan  # the newest 200 of 600 matches, no more
            search = FullText(engine)
            hits = await search.messages([conversation_id], ["kumquat"], 3)
            assert [hit.content for hit in hits] == [
                "kumquat note 5 filler",  # n = 2995, 2990, 2985 (mod 13)
                "kumquat note 0 filler",
                "kumquat note 8 filler",
            ]
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM message_words WHERE word = 'kumquat'"))
            assert await search.messages([conversation_id], ["kumquat"], 3) == []
        finally:
            await engine.dispose()


async def test_terms_match_as_the_index_stores_words(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        store = Store(engine)
        conversation = await store.conversation(GENERAL)
        for content in ("she runs every morning", "привет из Москвы", "just the usual"):
            await store.add(conversation.id, NewMessage("user", "u", "Ann", content, 5))
        search = FullText(engine)

        async def found(term: str) -> list[str]:
            hits = await search.messages([conversation.id], [term], 5)
            return [hit.content for hit in hits]

        assert await found("running") == ["she runs every morning"]  # stemmed alike
        assert await found("прив") == ["привет из Москвы"]  # other scripts: a word's start
        assert await found("москвы") == ["привет из Москвы"]
        assert await found("runn") == []  # Latin words are whole words, not starts
    finally:
        await engine.dispose()


async def test_several_conversations_are_searched_each_to_its_newest(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        store = Store(engine)
        general, random = await store.conversation(GENERAL), await store.conversation(RANDOM)
        for n in range(6):
            conversation = general if n % 2 else random
            await store.add(conversation.id, NewMessage("user", "u", "Ann", f"kumquat {n}", 3))
        await store.add(general.id, NewMessage("user", "u", "Ann", "no fruit here", 3))
        hits = await FullText(engine).messages([general.id, random.id], ["kumquat"], 4)
        assert [hit.content for hit in hits] == [f"kumquat {n}" for n in (5, 4, 3, 2)]
    finally:
        await engine.dispose()
