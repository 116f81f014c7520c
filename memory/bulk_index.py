"""Writing an import's messages: rows handed to the driver as they are, indexed for search a
batch at a time.

Rows go to the driver in one call per batch (SQLite `executemany`, PostgreSQL `COPY`): the
Core insert's per-row parameter processing was most of an import's time after tokenizing.

On SQLite the FTS5 insert trigger indexes one row at a time, interleaving index pages with
table pages (100,000 messages: ~10 s with the trigger, ~2 s inserted bare and indexed in one
`INSERT … SELECT`). Inside the import's transaction the trigger is dropped, each batch of rows
inserted and then indexed in one statement, and the trigger re-created at the end. SQLite's
DDL is transactional and the transaction holds the only write lock from its first statement:
no other writer can store a message while the trigger is missing, and a failed import rolls
the trigger back with everything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

_TRIGGER = "messages_fts_insert"
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
_SQLITE_INSERT = (
    f"INSERT INTO messages ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


@dataclass
class _Index:
    """The FTS5 index, while its insert trigger is suspended."""

    trigger: str  # its CREATE statement
    columns: tuple[str, ...]  # of messages_fts, as the trigger fills them
    after: int  # rows above this id are not indexed yet


class BulkWriter:
    """Inserts message rows in one connection's transaction (see `bulk_writing`)."""

    def __init__(self, connection: AsyncConnection, index: _Index | None) -> None:
        self._connection = connection
        self._index = index

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows of values in `COLUMNS` order, `created_at` a UTC datetime."""
        if self._connection.dialect.name == "postgresql":
            await _copy(self._connection, rows)
            return
        await self._connection.exec_driver_sql(
            _SQLITE_INSERT,
            [
                (conversation, role, author, name, content, tokens, _sqlite_time(at), terms)
                for conversation, role, author, name, content, tokens, at, terms in rows
            ],
        )
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
    index = await _suspend_indexing(connection) if connection.dialect.name == "sqlite" else None
    yield BulkWriter(connection, index)
    if index is not None:
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
    return _Index(str(trigger), columns, after)


async def _last_id(connection: AsyncConnection) -> int:
    return int(await connection.scalar(text("SELECT coalesce(max(id), 0) FROM messages")) or 0)


def _sqlite_time(value: datetime) -> str:
    """A UTC time as SQLAlchemy stores `DateTime` in SQLite (its default storage format)."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


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
