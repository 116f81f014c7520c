"""Reading a conversation's window: its newest messages that fit a token budget, and the
earlier ones the same read returned (the summary's next batch is usually among them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.db import Read, SqliteLink
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
_MIN_BATCH = 32
_MAX_BATCH = 4096
# Tokens per message assumed when sizing the first read of a conversation's window (chat lines
# are short; a longer guess would mean a second read more often, a shorter one reading rows not
# used). Later reads use the size the last one found.
TOKENS_GUESS = 16.0
# A read takes a quarter more rows than the window is expected to hold: the window's size
# varies, and the summary's next batch begins just before it (see `Earlier`).
_MARGIN = 1.25
# Positions in COLUMNS (rows are read by position: attribute lookups cost more).
ID, ROLE, AUTHOR_NAME, CONTENT, TOKENS = 0, 1, 3, 4, 5
# Larger than any message id: "the window as it would be for the next message".
AFTER_ALL = 2**62


class StoredMessage(NamedTuple):
    """A stored message as read. A tuple: one is built per row of a window (thousands at a
    128k budget), and a frozen dataclass's `__init__` cost ~1 µs a row more."""

    id: int
    role: str
    author_id: str
    author_name: str
    content: str
    tokens: int
    created_at: datetime


Convert = Callable[[Sequence[Any]], tuple[Any, ...]]  # a row as stored to COLUMNS' values


@dataclass(frozen=True)
class Earlier:
    """The messages just before a window that its read returned too (newest first): every
    message above `after` and below the window is among them."""

    rows: Sequence[Sequence[Any]]  # as stored (see `WindowRead`)
    after: int
    convert: Convert = tuple

    def fitting(self, after_id: int, budget: int, per_message: int) -> list[StoredMessage] | None:
        """What `Store.window` would read before the window, down to `after_id`, for `budget`;
        None when this read did not reach back far enough to tell."""
        fitting: list[StoredMessage] = []
        spent = 0
        for row in self.rows:
            spent += row[TOKENS] + per_message
            if row[ID] <= after_id or spent > budget:
                return fitting[::-1]
            fitting.append(StoredMessage._make(self.convert(row)))
        return fitting[::-1] if self.after <= after_id else None


# Nothing known of the messages before a window (a prompt built without a read).
EARLIER_UNKNOWN = Earlier((), AFTER_ALL)


@dataclass(frozen=True)
class WindowRead:
    # The window, oldest first, as stored (by position: ID, ROLE...; on SQLite dates are text).
    # A 128k-token window is ~2,000 rows, of which the prompt needs a few values: making each a
    # StoredMessage with its date parsed cost ~1.3 ms of CPU per reply on the overhead bench.
    rows: Sequence[Sequence[Any]]
    earlier: Earlier
    size: float  # tokens per message read (with `per_message`): sizes the next read
    convert: Convert = tuple

    def messages(self) -> list[StoredMessage]:
        return [StoredMessage._make(self.convert(row)) for row in self.rows]

    def within(self, budget: int, per_message: int, floor: int) -> WindowRead:
        """This read as `read_window` would give it for a `budget` no larger than its own and a
        `floor` no lower: its newest rows that fit, the others joining the earlier ones."""
        spent = 0
        for index in range(len(self.rows) - 1, -1, -1):
            row = self.rows[index]
            spent += row[TOKENS] + per_message
            if spent > budget or row[ID] <= floor:
                earlier = Earlier(
                    [*self.rows[index::-1], *self.earlier.rows], self.earlier.after, self.convert
                )
                return WindowRead(self.rows[index + 1 :], earlier, self.size, self.convert)
        return self


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
_WINDOW = Read(_newest_first(COLUMNS))


async def read_window(
    connection: AsyncConnection | SqliteLink,
    conversation_id: int,
    reset_after: int,
    before_id: int,
    budget: int,
    per_message: int,
    floor: int = 0,
    size: float = TOKENS_GUESS,
) -> WindowRead:
    """The newest messages after `reset_after`, before `before_id` and above `floor` that fit
    `budget`, and the rows of the last batch that did not.

    Reads newest-first and stops at the first message that does not fit, so the work follows
    the budget, not the history. Each read is sized from the budget left and the tokens per
    message (`size`: what the conversation's last read found), so a window usually takes one
    statement without reading many rows it does not use.
    """
    fitting: list[Sequence[Any]] = []
    spent = 0
    cursor = before_id
    convert = _WINDOW.converter(connection.dialect)
    while True:
        batch = _batch(budget - spent, size)
        rows = await _WINDOW.stored_rows(
            connection,
            {"c": conversation_id, "after": reset_after, "before": cursor, "batch": batch},
        )
        for index, row in enumerate(rows):
            spent += row[TOKENS] + per_message
            if spent > budget or row[ID] <= floor:
                rest = rows[index:]
                # A short batch read everything down to the conversation's start.
                after = reset_after if len(rows) < batch else rest[-1][ID] - 1
                # `spent` counts this row too: the size of every row read so far.
                size = spent / (len(fitting) + 1)
                return WindowRead(fitting[::-1], Earlier(rest, after, convert), size, convert)
            fitting.append(row)
        size = spent / len(fitting) if fitting else TOKENS_GUESS
        if len(rows) < batch:
            return WindowRead(fitting[::-1], Earlier((), reset_after, convert), size, convert)
        cursor = rows[-1][ID]


def _batch(budget: int, size: float) -> int:
    return min(max(int(budget / max(size, 1.0) * _MARGIN), _MIN_BATCH), _MAX_BATCH)
