"""SQLite's write-ahead log copied into the database apart from the replies' commits.

SQLite checkpoints the log in the commit that takes it past 1,000 pages: under a serving bot
that commit is a reply storing its message, which then waited for the copy and its sync (the
overhead bench's one slow reply left once statements were prepared ahead: 5-7 ms over the
median). While a bot serves, its connection does not checkpoint; a connection of its own, in a
worker thread, does every `CHECKPOINT_EVERY` seconds, beside the replies' statements (a
passive checkpoint waits for no reader or writer). Other processes on the file (commands run
beside the bot) keep SQLite's own checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0  # seconds
_SQLITE_DEFAULT = 1000  # pages: SQLite's own threshold, put back when the bot stops


async def keep_checkpointing(engine: AsyncEngine, stop: asyncio.Event) -> None:
    """Checkpoint the engine's SQLite file from a connection of its own until `stop` is set;
    its pooled connections leave checkpoints to it meanwhile. Nothing for other databases (or
    SQLite in memory, which has no log)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return
    try:
        own = await asyncio.to_thread(_open, path)
    except sqlite3.Error as exc:  # the bot's connection keeps checkpointing, as SQLite does
        log.warning("no connection of its own for checkpoints: %s", exc)
        return
    await _set_threshold(engine, 0)
    event.listen(engine.sync_engine, "connect", _leave_checkpoints)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECKPOINT_EVERY)
            await asyncio.to_thread(_checkpoint, own)
    finally:
        event.remove(engine.sync_engine, "connect", _leave_checkpoints)
        await _set_threshold(engine, _SQLITE_DEFAULT)
        await asyncio.to_thread(own.close)


def _leave_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    """A connection opened meanwhile (one invalidated was replaced) leaves them too."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


async def _set_threshold(engine: AsyncEngine, pages: int) -> None:
    # The pool's one connection (memory/db.py `create_engine`) is the one that commits.
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(pages)}")
    except SQLAlchemyError as exc:  # a fresh connection gets the setting on connecting
        log.warning("checkpoint threshold not set to %d pages: %s", pages, type(exc).__name__)


def _open(path: str) -> sqlite3.Connection:
    # Used by one worker-thread call at a time, from whichever thread runs it.
    return sqlite3.connect(path, check_same_thread=False)


def _checkpoint(connection: sqlite3.Connection) -> None:
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:  # the next one tries again; SQLite's own state is unharmed
        log.warning("checkpoint failed: %s", exc)
