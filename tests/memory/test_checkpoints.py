"""While a bot serves, SQLite's log is checkpointed by a connection of its own, not by the
replies' commits; SQLite's own threshold is back once it stops."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import cast

import pytest

import memory.checkpoints
from memory.checkpoints import keep_checkpointing
from memory.db import SqliteLink, linked, migrated_engine
from memory.keys import ConversationKey
from memory.store import NewMessage, Store


async def _threshold(store: Store) -> int:
    async with linked(store.engine) as link:
        rows = await cast("SqliteLink", link).driver.execute_fetchall("PRAGMA wal_autocheckpoint")
    return int(next(iter(rows))[0])


def _in_the_file(path: Path, content: str) -> bool:
    """Whether the database file itself (not its log) holds a message with `content`."""
    raw = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # reads no log
    try:
        found = raw.execute("SELECT 1 FROM messages WHERE content = ?", (content,)).fetchall()
    except sqlite3.OperationalError:  # no table yet: the schema is still only in the log
        return False
    finally:
        raw.close()
    return bool(found)


async def test_the_log_is_checkpointed_apart_while_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory.checkpoints, "CHECKPOINT_EVERY", 0.05)
    path = tmp_path / "parley.db"
    async with migrated_engine(f"sqlite+aiosqlite:///{path}") as engine:
        store = Store(engine)
        conversation = await store.conversation(ConversationKey("test", "w", "c"))
        stop = asyncio.Event()
        checkpointing = asyncio.create_task(keep_checkpointing(engine, stop))
        await asyncio.sleep(0.1)
        assert await _threshold(store) == 0  # the replies' commits leave it
        await store.add(conversation.id, NewMessage("user", "ann", "Ann", "copied over", 3))
        for _ in range(100):  # the checkpointer's next turn copies the commit into the file
            if _in_the_file(path, "copied over"):
                break
            await asyncio.sleep(0.02)
        assert _in_the_file(path, "copied over")
        stop.set()
        await asyncio.wait_for(checkpointing, 2)
        assert await _threshold(store) == 1000  # SQLite's own, back


async def test_nothing_to_do_for_a_database_in_memory() -> None:
    async with migrated_engine("sqlite+aiosqlite:///:memory:") as engine:
        await asyncio.wait_for(keep_checkpointing(engine, asyncio.Event()), 1)
