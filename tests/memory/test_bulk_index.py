"""A streamed import indexes its messages for search at the end, in its own transaction."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, event, text

import memory.bulk_index
from memory.bulk_index import _sqlite_times
from memory.db import migrated_engine
from memory.keys import ConversationKey
from memory.search import FullText
from memory.store import NewMessage, Store
from memory.tokens import TokenCounter
from memory.transfer import Imported, InvalidImport, import_file

KEY = ConversationKey("terminal", "local", "imported")


def _lines(*contents: str) -> str:
    return "".join(
        json.dumps(
            {
                "conversation": str(KEY),
                "author": "Ann",
                "role": "user",
                "content": content,
                "time": f"2026-01-01T10:00:{n:02d}+00:00",
            }
        )
        + "\n"
        for n, content in enumerate(contents)
    )


async def _trigger(url: str) -> int:
    """Whether the insert trigger is there, after checking that the index matches the stored
    messages (FTS5's integrity check raises otherwise)."""
    async with migrated_engine(url) as engine, engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        )
        found = await connection.scalar(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'messages_fts_insert'")
        )
    return int(found or 0)


async def test_imported_messages_are_found_and_later_ones_indexed_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    source.write_text(_lines("the kumquat harvest", "a quince pie"), encoding="utf-8")
    counter = TokenCounter("gpt-4o-mini")
    async with migrated_engine(url) as engine:
        store = Store(engine)
        before = await store.add((await store.conversation(KEY)).id, _message("old quince jam"))
        assert await import_file(engine, source, None, counter) == Imported(2, 0)
        conversation = await store.conversation(KEY)
        after = await store.add(conversation.id, _message("fresh quince tart"))
        found = await FullText(engine).messages([conversation.id], ["quince"], 10)
        kumquat = await FullText(engine).messages([conversation.id], ["kumquat"], 10)
    # The import's rows indexed at the end, the others by the trigger.
    assert [hit.content for hit in found] == ["fresh quince tart", "a quince pie", "old quince jam"]
    assert [hit.content for hit in kumquat] == ["the kumquat harvest"]
    assert before < after
    assert await _trigger(url) == 1


async def test_a_failed_import_keeps_the_trigger(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    source.write_text(_lines("good line") + "not json\n", encoding="utf-8")
    async with migrated_engine(url) as engine:
        with pytest.raises(InvalidImport):
            await import_file(engine, source, None, TokenCounter("gpt-4o-mini"))
        store = Store(engine)
        conversation = await store.conversation(KEY)
        await store.add(conversation.id, _message("pomelo salad"))
        found = await FullText(engine).messages([conversation.id], ["pomelo"], 10)
    assert [hit.content for hit in found] == ["pomelo salad"]
    assert await _trigger(url) == 1


def _message(content: str) -> NewMessage:
    return NewMessage("user", "ann", "Ann", content, 5)


async def test_imported_times_are_stored_as_sqlalchemy_stores_them(tmp_path: Path) -> None:
    # Rows go to the driver unprocessed: their times must still compare (as text, in SQLite)
    # with the times SQLAlchemy writes.
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    source.write_text(_lines("on the hour"), encoding="utf-8")
    async with migrated_engine(url) as engine:
        await import_file(engine, source, None, TokenCounter("gpt-4o-mini"))
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT created_at FROM messages"))
        written = (
            DateTime(timezone=True).dialect_impl(engine.dialect).bind_processor(engine.dialect)
        )
    assert written is not None
    assert stored == written(datetime(2026, 1, 1, 10, 0, tzinfo=UTC))


def test_times_are_written_as_sqlalchemy_writes_them() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    written = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert written is not None
    times = [
        datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 10, 0, 0, 250_000, tzinfo=UTC),
        datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    assert _sqlite_times(times) == [written(time) for time in times]


def _figs(source: Path, count: int) -> None:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    source.write_text(
        "".join(
            json.dumps(
                {
                    "conversation": str(KEY),
                    "author": "Ann",
                    "role": "user",
                    "content": f"fig number {n}",
                    "time": (start + timedelta(seconds=n)).isoformat(),
                }
            )
            + "\n"
            for n in range(count)
        ),
        encoding="utf-8",
    )


async def test_many_rows_are_stored_in_order_indexed_and_the_merge_setting_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 250 rows: two INSERTs of 100 rows and one of 50. The index's own automerge setting
    # (here 6) is back after the import.
    monkeypatch.setattr(memory.bulk_index, "_SQLITE_ROWS", 100)
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    _figs(source, 250)
    async with migrated_engine(url) as engine:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 6)")
            )
        assert await import_file(engine, source, None, TokenCounter("gpt-4o-mini")) == Imported(
            250, 0
        )
        async with engine.connect() as connection:
            contents = (await connection.scalars(text("SELECT content FROM messages"))).all()
            automerge = await connection.scalar(
                text("SELECT v FROM messages_fts_config WHERE k = 'automerge'")
            )
        conversation = await Store(engine).conversation(KEY)
        found = await FullText(engine).messages([conversation.id], ["249"], 10)
    assert contents == [f"fig number {n}" for n in range(250)]
    assert automerge == 6
    assert [hit.content for hit in found] == ["fig number 249"]
    assert await _trigger(url) == 1


async def test_a_line_twice_in_a_file_is_stored_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    once = _lines("ok", "ok")  # the same text at two times: two messages
    source.write_text(once + once.splitlines(keepends=True)[0], encoding="utf-8")
    async with migrated_engine(url) as engine:
        imported = await import_file(engine, source, None, TokenCounter("gpt-4o-mini"))
        assert imported == Imported(2, 1)
        assert await import_file(engine, source, None, TokenCounter("gpt-4o-mini")) == Imported(
            0, 3
        )


async def test_rows_per_insert_keep_to_the_librarys_limit_of_values(tmp_path: Path) -> None:
    # A library allowing 100 values a statement (999 before SQLite 3.32): 12 rows of 8 values
    # an INSERT, not 1,000 ("too many SQL variables").
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    source = tmp_path / "in.jsonl"
    _figs(source, 30)
    async with migrated_engine(url) as engine:

        def few_values(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection._conn.setlimit(
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100
            )

        await engine.dispose()
        event.listen(engine.sync_engine, "connect", few_values)
        assert await import_file(engine, source, None, TokenCounter("gpt-4o-mini")) == Imported(
            30, 0
        )
        async with engine.connect() as connection:
            contents = (await connection.scalars(text("SELECT content FROM messages"))).all()
    assert contents == [f"fig number {n}" for n in range(30)]
