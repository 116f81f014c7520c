"""Full-text indexing of a bulk import at once, on SQLite.

The FTS5 insert trigger indexes one row at a time, interleaving index pages with table pages:
an import spent most of its time there (100,000 messages: ~10 s with the trigger, ~2 s
inserted bare and indexed in one `INSERT … SELECT`). Inside the import's transaction the
trigger is dropped, the rows inserted, the new rows indexed in one statement and the trigger
re-created. SQLite's DDL is transactional and the transaction holds the only write lock from
its first statement: no other writer can store a message while the trigger is missing, and a
failed import rolls the trigger back with everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_TRIGGER = "messages_fts_insert"


@dataclass(frozen=True)
class Suspended:
    trigger: str  # its CREATE statement
    columns: tuple[str, ...]  # of messages_fts, as the trigger fills them
    after: int  # rows above this id are the import's


async def suspend_indexing(session: AsyncSession) -> Suspended | None:
    """Stop indexing messages row by row in this (SQLite) transaction; None: nothing to do
    (another database, or no trigger)."""
    if (await session.connection()).dialect.name != "sqlite":
        return None
    # pysqlite opens a transaction only before DML: a write that changes nothing opens it (and
    # takes the write lock), so the DROP below is part of it.
    await session.execute(text("UPDATE conversations SET id = id WHERE 0"))
    trigger = await session.scalar(
        text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
        {"name": _TRIGGER},
    )
    if trigger is None:
        return None
    columns = tuple(
        str(row.name) for row in await session.execute(text("PRAGMA table_info(messages_fts)"))
    )
    after = await session.scalar(text("SELECT coalesce(max(id), 0) FROM messages"))
    await session.execute(text(f"DROP TRIGGER {_TRIGGER}"))
    return Suspended(str(trigger), columns, int(after or 0))


async def resume_indexing(session: AsyncSession, suspended: Suspended | None) -> None:
    """Index the rows stored since `suspend_indexing` and restore the trigger (same
    transaction)."""
    if suspended is None:
        return
    names = ", ".join(suspended.columns)
    await session.execute(
        text(
            f"INSERT INTO messages_fts (rowid, {names}) "
            f"SELECT id, {names} FROM messages WHERE id > :after"
        ),
        {"after": suspended.after},
    )
    await session.execute(text(suspended.trigger))
