"""Writing an import's messages: rows handed to the driver as they are, indexed for search a
batch at a time.

Rows go to the driver in one call per batch (on SQLite as INSERTs of 100 rows each, on
PostgreSQL `COPY`): the Core insert's per-row parameter processing was most of an import's
time after tokenizing.

On SQLite the FTS5 insert trigger indexes one row at a time, interleaving index pages with
table pages (100,000 messages: ~10 s with the trigger, ~2 s inserted bare and indexed in one
`INSERT … SELECT`). Inside the import's transaction the trigger is dropped, each batch of rows
inserted and then indexed in one statement, and the trigger re-created at the end. SQLite's
DDL is transactional and the transaction holds the only write lock from its first statement:
no other writer can store a message while the trigger is missing, and a failed import rolls
the trigger back with everything else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

_TRIGGER = "messages_fts_insert"
# FTS5 merges a level's segments once it holds `automerge` of them (4 by default): during a
# bulk load, at 16 (its most), the index is merged less often (1M messages: ~25% less index
# time, the same rows indexed); the index's setting is put back at the end.
_DEFAULT_AUTOMERGE = 4
_BULK_AUTOMERGE = 16
# What `BulkWriter.insert` takes, in this order.
COLUMNS = (
    "conversation_id",
    "role",
    "author_id",
    "author_name",
    "content",
    "tokens",
    "created_at",
    "terms",
)
_TIME = COLUMNS.index("created_at")
# Rows per SQLite INSERT, at most: pysqlite lets go of the GIL for each statement's execution
# and takes it back after, waiting for the thread reading and counting the next batch (which
# holds it in turns of `sys.getswitchinterval()`): row by row the import took ~30% more CPU,
# 100 rows a statement left the database's thread waiting a third of the time (1M messages:
# 13.9-15.2 s, 1,000 rows 10.4-11.7 s, 4,000 no faster). Fewer when the library allows fewer
# values a statement (999 before SQLite 3.32).
_SQLITE_ROWS = 1000


@dataclass
class _Index:
    """The FTS5 index, while its insert trigger is suspended."""

    trigger: str  # its CREATE statement
    columns: tuple[str, ...]  # of messages_fts, as the trigger fills them
    after: int  # rows above this id are not indexed yet
    automerge: int  # the index's own setting, put back at the end


class BulkWriter:
    """Inserts message rows in one connection's transaction (see `bulk_writing`)."""

    def __init__(
        self, connection: AsyncConnection, index: _Index | None, rows: int = _SQLITE_ROWS
    ) -> None:
        self._connection = connection
        self._index = index
        self._rows = rows  # per SQLite INSERT

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows of values in `COLUMNS` order, `created_at` a UTC datetime."""
        if self._connection.dialect.name == "postgresql":
            await _copy(self._connection, rows)
            return
        values = list(chain.from_iterable(rows))
        values[_TIME :: len(COLUMNS)] = _sqlite_times(values[_TIME :: len(COLUMNS)])
        width = len(COLUMNS) * self._rows
        whole = len(values) - len(values) % width
        if whole:
            await self._connection.exec_driver_sql(
                _sqlite_insert(self._rows),
                [tuple(values[start : start + width]) for start in range(0, whole, width)],
            )
        if whole < len(values):
            rest = tuple(values[whole:])
            await self._connection.exec_driver_sql(_sqlite_insert(len(rest) // len(COLUMNS)), rest)
        if self._index is not None:
            await self._catch_up(self._index)

    async def _catch_up(self, index: _Index) -> None:
        names = ", ".join(index.columns)
        await self._connection.execute(
            text(
                f"INSERT INTO messages_fts (rowid, {names}) "
                f"SELECT id, {names} FROM messages WHERE id > :after"
            ),
            {"after": index.after},
        )
        index.after = await _last_id(self._connection)


@asynccontextmanager
async def bulk_writing(connection: AsyncConnection) -> AsyncIterator[BulkWriter]:
    """A writer for the connection's transaction; on SQLite the rows are indexed a batch at a
    time rather than row by row, and the trigger is back on leaving without an error (a
    failure leaves it to the transaction's rollback)."""
    if connection.dialect.name != "sqlite":
        yield BulkWriter(connection, None)
        return
    index = await _suspend_indexing(connection)
    yield BulkWriter(connection, index, await _rows_per_insert(connection))
    if index is not None:
        await _automerge(connection, index.automerge)
        await connection.execute(text(index.trigger))


async def _suspend_indexing(connection: AsyncConnection) -> _Index | None:
    # pysqlite opens a transaction only before DML: a write that changes nothing opens it (and
    # takes the write lock), so the DROP below is part of it.
    await connection.execute(text("UPDATE conversations SET id = id WHERE 0"))
    trigger = await connection.scalar(
        text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
        {"name": _TRIGGER},
    )
    if trigger is None:
        return None
    columns = tuple(
        str(row.name) for row in await connection.execute(text("PRAGMA table_info(messages_fts)"))
    )
    after = await _last_id(connection)
    await connection.execute(text(f"DROP TRIGGER {_TRIGGER}"))
    automerge = await connection.scalar(
        text("SELECT v FROM messages_fts_config WHERE k = 'automerge'")
    )
    await _automerge(connection, _BULK_AUTOMERGE)
    return _Index(
        str(trigger), columns, after, _DEFAULT_AUTOMERGE if automerge is None else int(automerge)
    )


async def _rows_per_insert(connection: AsyncConnection) -> int:
    driver: Any = (await connection.get_raw_connection()).driver_connection
    values: int = driver._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # aiosqlite's
    return max(1, min(_SQLITE_ROWS, values // len(COLUMNS)))


async def _automerge(connection: AsyncConnection, segments: int) -> None:
    await connection.execute(
        text("INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', :n)"),
        {"n": segments},
    )


async def _last_id(connection: AsyncConnection) -> int:
    return int(await connection.scalar(text("SELECT coalesce(max(id), 0) FROM messages")) or 0)


@cache
def _sqlite_insert(rows: int) -> str:
    one = f"({', '.join('?' for _ in COLUMNS)})"
    return f"INSERT INTO messages ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)}"


def _sqlite_times(values: list[datetime]) -> list[str]:
    """UTC times as SQLAlchemy stores `DateTime` in SQLite (its default storage format,
    "2026-01-01 10:00:00.000000"). Written by msgspec's encoder as RFC 3339 and mended with
    `bytes.replace`: 0.16 µs a time, against ~1.2 µs for `datetime.isoformat`."""
    encoded = msgspec.json.encode(values).replace(b"T", b" ").replace(b"Z", b"")
    texts = msgspec.json.decode(encoded, type=list[str])
    return [t if len(t) == 26 else f"{t}.000000" for t in texts]  # a fraction of 0 is left out


async def _copy(connection: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
    import asyncpg  # only installed with PostgreSQL support

    driver: Any = (await connection.get_raw_connection()).driver_connection
    try:
        await driver.copy_records_to_table("messages", records=rows, columns=COLUMNS)
    except asyncpg.IntegrityConstraintViolationError as error:
        # As SQLAlchemy reports the same failure of an INSERT.
        raise IntegrityError("COPY messages", None, error) from error
    except asyncpg.PostgresError as error:
        raise DBAPIError("COPY messages", None, error) from error
