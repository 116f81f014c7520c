"""SQLite's full-text indexes merge their segments two at a time (migration 0013_fts_automerge,
memory/fulltext_schema.py AUTOMERGE): set on new databases and on upgraded ones, whose index
is merged into one segment and still finds what it found. Since 0015 the messages' index does
so when the bot asks (`usermerge`, memory/index_merging.py), never by itself (`automerge` 0)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.db import create_engine, migrate
from memory.fulltext_schema import AUTOMERGE
from memory.search import FullText
from tests.helpers import GENERAL, downgrade, old_conversation, old_message

_INDEXES = ("messages_fts", "passages_fts")
# Each index's settings at the newest revision (None: not set, FTS5's default).
_MERGING = {
    "messages_fts": {"automerge": 0, "usermerge": AUTOMERGE},
    "passages_fts": {"automerge": AUTOMERGE, "usermerge": None},
}


async def _merging(engine: AsyncEngine) -> dict[str, dict[str, int | None]]:
    """Each index's merge settings (None: not set)."""
    found: dict[str, dict[str, int | None]] = {}
    async with engine.connect() as connection:
        for fts in _INDEXES:
            found[fts] = {}
            for setting in ("automerge", "usermerge"):
                value = await connection.scalar(
                    text(f"SELECT v FROM {fts}_config WHERE k = :k"), {"k": setting}
                )
                found[fts][setting] = None if value is None else int(value)
    return found


async def test_a_new_database_merges_two_segments_at_a_time(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await migrate(engine)
        assert await _merging(engine) == _MERGING
    finally:
        await engine.dispose()


async def test_an_upgraded_index_is_merged_and_finds_what_it_found(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await migrate(engine, "0012_message_words")
        conversation_id = await old_conversation(engine, GENERAL)
        for n in range(30):  # one transaction each: a segment each, merged four at a time
            await old_message(engine, conversation_id, f"kumquat harvest {n}")
        await old_message(engine, conversation_id, "running late again")
        async with engine.begin() as connection:  # as databases made before 0013 merge
            for fts in _INDEXES:
                await connection.execute(
                    text(f"INSERT INTO {fts}({fts}, rank) VALUES ('automerge', 4)")
                )
        await migrate(engine)
        assert await _merging(engine) == _MERGING
        async with engine.begin() as connection:
            for fts in _INDEXES:  # raises if the index and the table disagree
                await connection.execute(
                    text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")
                )
        search = FullText(engine)
        hits = await search.messages([conversation_id], ["kumquat"], 50)
        assert sorted(hit.content for hit in hits) == sorted(
            f"kumquat harvest {n}" for n in range(30)
        )
        assert [hit.content for hit in await search.messages([conversation_id], ["late"], 5)] == [
            "running late again"
        ]
    finally:
        await engine.dispose()


async def test_going_back_before_0015_lets_stores_merge_again(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await migrate(engine)
        await downgrade(engine, "0014_inbound_open")
        assert (await _merging(engine))["messages_fts"] == {"automerge": AUTOMERGE, "usermerge": 4}
    finally:
        await engine.dispose()
