"""Reading a conversation's window: its newest messages that fit a token budget, and the
earlier ones the same read returned (the summary's next batch is usually among them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.tables import Message

# Plain columns, not ORM objects: building entities dominated the cost of large windows.
COLUMNS = (
    Message.id,
    Message.role,
    Message.author_id,
    Message.author_name,
    Message.content,
    Message.tokens,
    Message.created_at,
)
_FIRST_BATCH = 32
_MAX_BATCH = 4096
# Tokens per message assumed when sizing the first read of a window (chat lines are short;
# a longer guess would mean a second read more often, a shorter one reading rows not used).
_TOKENS_GUESS = 16
# Larger than any message id: "the window as it would be for the next message".
AFTER_ALL = 2**62


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    author_id: str
    author_name: str
    content: str
    tokens: int
    created_at: datetime


@dataclass(frozen=True)
class Earlier:
    """The messages just before a window that its read returned too (newest first): every
    message above `after` and below the window is among them."""

    rows: Sequence[Row[Any]]
    after: int

    def fitting(self, after_id: int, budget: int, per_message: int) -> list[StoredMessage] | None:
        """What `Store.window` would read before the window, down to `after_id`, for `budget`;
        None when this read did not reach back far enough to tell."""
        fitting: list[StoredMessage] = []
        spent = 0
        for row in self.rows:
            spent += row.tokens + per_message
            if row.id <= after_id or spent > budget:
                return fitting[::-1]
            fitting.append(StoredMessage(*tuple(row)))
        return fitting[::-1] if self.after <= after_id else None


# Nothing known of the messages before a window (a prompt built without a read).
EARLIER_UNKNOWN = Earlier((), AFTER_ALL)


@dataclass(frozen=True)
class WindowRead:
    messages: list[StoredMessage]  # oldest first
    earlier: Earlier


def _newest_first(columns: Sequence[Any]) -> Select[Any]:
    return (
        select(*columns)
        .where(
            Message.conversation_id == bindparam("c"),
            Message.id > bindparam("after"),
            Message.id < bindparam("before"),
        )
        .order_by(Message.id.desc())
        .limit(bindparam("batch"))
    )


# Built once: building SQL expressions per message cost CPU and left ~150 objects of cyclic
# garbage a message for the collector (whose full passes stalled the event loop).
_WINDOW = _newest_first(COLUMNS)


async def read_window(
    connection: AsyncConnection,
    conversation_id: int,
    reset_after: int,
    before_id: int,
    budget: int,
    per_message: int,
    floor: int = 0,
) -> WindowRead:
    """The newest messages after `reset_after`, before `before_id` and above `floor` that fit
    `budget`, and the rows of the last batch that did not.

    Reads newest-first and stops at the first message that does not fit, so the work follows
    the budget, not the history. The first read is sized from the budget, so a window usually
    takes one statement; a conversation of tiny messages reads more in doubling batches.
    """
    fitting: list[Row[Any]] = []
    spent = 0
    cursor = before_id
    batch = min(max(budget // _TOKENS_GUESS, _FIRST_BATCH), _MAX_BATCH)
    while True:
        rows = (
            await connection.execute(
                _WINDOW,
                {"c": conversation_id, "after": reset_after, "before": cursor, "batch": batch},
            )
        ).all()
        for index, row in enumerate(rows):
            spent += row.tokens + per_message
            if spent > budget or row.id <= floor:
                rest = rows[index:]
                # A short batch read everything down to the conversation's start.
                after = reset_after if len(rows) < batch else rest[-1].id - 1
                return _read(fitting, Earlier(rest, after))
            fitting.append(row)
        if len(rows) < batch:
            return _read(fitting, Earlier((), reset_after))
        cursor = rows[-1].id
        batch = min(batch * 2, _MAX_BATCH)


def _read(fitting: list[Row[Any]], earlier: Earlier) -> WindowRead:
    return WindowRead([StoredMessage(*row) for row in reversed(fitting)], earlier)
