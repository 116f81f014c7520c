"""Storing a message never merges the search index (migration 0015); `IndexMerging` merges what
stores left, two segments at a time, and the index still finds every message."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import memory.index_merging
from memory.db import SqliteLink, linked, migrated_engine
from memory.index_merging import IndexMerging
from memory.keys import ConversationKey
from memory.search import FullText
from memory.store import NewMessage, Store
from tests.helpers import index_segments, left_to_merge

_KEY = ConversationKey("test", "w", "c")
# Segments a fully merged index of a dozen messages may keep: one a level at most.
_MERGED = 4


async def _stored(store: Store, count: int, start: int = 0, words: int = 0) -> int:
    """`count` messages stored one by one (a transaction, so a segment, each), with `words`
    words of their own besides; the conversation."""
    conversation = await store.conversation(_KEY)
    for n in range(start, start + count):
        text = " ".join([f"kumquat no {n}", *(f"w{n}x{i}" for i in range(words))])
        await store.add(conversation.id, NewMessage("user", "ann", "Ann", text, 5))
    return conversation.id


async def _integrity(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:  # raises if the index and the table disagree
        await connection.execute(
            text("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        )


async def test_stores_leave_segments_the_merging_merges(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    async with migrated_engine(f"sqlite+aiosqlite:///{path}") as engine:
        store = Store(engine)
        conversation_id = await _stored(store, 12)
        assert await index_segments(engine) == 12  # none merged inside a store
        await IndexMerging(engine).merge()
        assert await index_segments(engine) <= _MERGED
        assert not left_to_merge(path)
        await _integrity(engine)
        hits = await FullText(engine).messages([conversation_id], ["kumquat"], 50)
        assert sorted(hit.content for hit in hits) == sorted(f"kumquat no {n}" for n in range(12))


async def test_stores_while_a_run_is_under_way_are_merged_too(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    async with migrated_engine(f"sqlite+aiosqlite:///{path}") as engine:
        store = Store(engine)
        await _stored(store, 12)
        merging = IndexMerging(engine)
        running = asyncio.create_task(merging.merge())
        await asyncio.sleep(0)  # its first step has the connection
        await _stored(store, 3, start=12)  # between its steps
        await merging.merge()  # the call their stores make
        await running
        assert not left_to_merge(path)


async def test_calls_at_once_share_one_run(tmp_path: Path) -> None:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}") as engine:
        await _stored(Store(engine), 1)  # one segment: nothing to merge
        steps: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: steps.append(a[2]))
        merging = IndexMerging(engine)
        await asyncio.gather(*(merging.merge() for _ in range(5)))
        assert len(steps) == 1 and "'merge'" in steps[0]


async def test_each_call_owes_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.index_merging, "STEP_PAGES", 1)
    path = tmp_path / "parley.db"
    async with migrated_engine(f"sqlite+aiosqlite:///{path}") as engine:
        await _stored(Store(engine), 12, words=1000)  # segments of several pages
        steps: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: steps.append(a[2]))
        merging = IndexMerging(engine)
        for _ in range(3):
            await merging.merge()
        assert len(steps) == 3  # paced by the writes, as FTS5 paces itself
        assert left_to_merge(path)


async def test_stopped_merging_leaves_the_segments(tmp_path: Path) -> None:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}") as engine:
        await _stored(Store(engine), 6)
        merging = IndexMerging(engine)
        merging.stop()
        await merging.merge()
        assert await index_segments(engine) == 6


async def test_a_failed_step_is_logged_and_left_for_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "parley.db"
    async with migrated_engine(f"sqlite+aiosqlite:///{path}") as engine:
        await _stored(Store(engine), 6)
        async with linked(engine) as link:  # wait 20 ms for a lock rather than 5 s
            await cast("SqliteLink", link).driver.execute("PRAGMA busy_timeout=20")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        merging = IndexMerging(engine)
        with caplog.at_level(logging.WARNING, "memory.index_merging"):
            await merging.merge()
        assert "search index not merged this time: OperationalError" in caplog.text
        assert await index_segments(engine) == 6
        other.execute("ROLLBACK")
        other.close()
        await merging.merge()
        assert await index_segments(engine) <= _MERGED


async def test_nothing_to_merge_elsewhere(postgres_url: str) -> None:
    async with migrated_engine(postgres_url) as engine:
        await _stored(Store(engine), 2)
        await IndexMerging(engine).merge()  # PostgreSQL's indexes have no segments
