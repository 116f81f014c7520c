"""What surrounds a recalled message: the turns next to it, and the turns of a period.

An answer is often a reply ("Porto, finally!") whose question holds the words a search finds
("Did you book the offsite?"), and a question may ask about a time relative to an event ("what
did she do the week after the trip?"). Both are found through ids: a conversation's messages
are numbered in the order they were stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.ranking import Columns
from memory.search import Hit, message_hit, message_hits
from memory.tables import Message

# Neighbours further apart than this belong to another exchange.
_SAME_EXCHANGE = timedelta(minutes=20)
_QUESTION_MARKS = ("?", "？")  # noqa: RUF001 (the full-width mark of Chinese and Japanese)
# What str.rstrip() strips (every character whose isspace() is true): `asks_sql` trims the same.
BLANK = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

Direction = Literal["after", "before"]
_AFTER = frozenset(
    {"after", "afterwards", "following", "later", "since", "next"}
    | {"후", "뒤", "다음", "이후", "끝나다", "지나다"}  # 끝나고 며칠: the days after it ended
)
_BEFORE = frozenset({"before", "earlier", "previous", "prior", "until", "전", "이전", "직전"})
_SPANS = (
    (frozenset({"day", "tomorrow", "yesterday", "날", "다음날", "전날", "하루"}), 2),
    (frozenset({"days", "week", "weekend", "weeks", "며칠", "주", "주말", "일주일"}), 10),
    (frozenset({"month", "months", "달", "한달"}), 35),
)
_DEFAULT_SPAN = 10
# Words that place the question in time rather than name its event.
TIME_WORDS = _AFTER | _BEFORE | frozenset().union(*(cues for cues, _days in _SPANS))
_WORD = re.compile(r"[^\W_]+")


def period_asked(text: str, terms: Sequence[str]) -> tuple[Direction, timedelta] | None:
    """Whether `text` asks about a time relative to an event ("after the trip", "여행 다음 주말"),
    and how far from it to look; `terms` are its search words (Korean ones analyzed)."""
    words = {*_WORD.findall(text.lower()), *terms}
    direction: Direction | None = (
        "after" if words & _AFTER else "before" if words & _BEFORE else None
    )
    if direction is None:
        return None
    days = next((span for cues, span in _SPANS if words & cues), _DEFAULT_SPAN)
    return direction, timedelta(days=days)


def named(hits: Sequence[Hit], text: str, terms: Sequence[str]) -> list[str]:
    """The authors of `hits` that `text` names (every word of the name, any letter case)."""
    words = {*_WORD.findall(text.lower()), *terms}
    names = {hit.author_name for hit in hits if hit.filename is None}
    return sorted(n for n in names if set(_WORD.findall(n.lower())) <= words and _WORD.search(n))


def _asks(hit: Hit) -> bool:
    return hit.content.rstrip().endswith(_QUESTION_MARKS)


def asks_sql(alias: str) -> str:
    """SQL: whether the message `alias` asks something (as `_asks`; `:blank` is BLANK)."""
    trimmed = f"rtrim({alias}.content, :blank)"
    return "(" + " OR ".join(f"{trimmed} LIKE '%{mark}'" for mark in _QUESTION_MARKS) + ")"


def completing(hit: Hit, before: Hit | None, after: Hit | None) -> list[Hit]:
    """Of the turns just before and after `hit`, those that complete it: the question it
    answers (the turn before, when that asks something) and the answer to the question it asks
    (the turn after), within one exchange (close in time)."""
    return [
        turn
        for turn in (
            before if before is not None and _asks(before) else None,
            after if _asks(hit) else None,
        )
        if turn is not None and abs(turn.created_at - hit.created_at) <= _SAME_EXCHANGE
    ]


class Surroundings:
    def __init__(self, engine: AsyncEngine) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"

    async def adjacent(
        self, conversation_id: int, hits: Sequence[Hit], after_id: int, before_id: int
    ) -> dict[int, list[Hit]]:
        """For each message hit, the turns that complete it (see `completing`), keyed by the
        hit's id, with after_id < id < before_id."""
        messages = [hit for hit in hits if hit.filename is None]
        if not messages:
            return {}
        # One statement: each neighbour id is an indexed seek on (conversation_id, id).
        previous = (
            "(SELECT max(id) FROM messages WHERE conversation_id = :c AND id < :h{n} AND id > :a)"
        )
        following = (
            "(SELECT min(id) FROM messages WHERE conversation_id = :c AND id > :h{n} AND id < :b)"
        )
        neighbours = ", ".join(
            f"{previous.format(n=n)}, {following.format(n=n)}" for n in range(len(messages))
        )
        statement = text(
            "SELECT id, author_name, content, created_at, conversation_id, tokens, role "
            "FROM messages "
            f"WHERE id IN ({neighbours})"
        ).columns(*Columns.MESSAGE_HITS.value)
        values: dict[str, int] = {"c": conversation_id, "a": after_id, "b": before_id}
        values.update({f"h{n}": hit.id for n, hit in enumerate(messages)})
        async with self._session() as session:
            found = {row.id: message_hit(row) for row in await session.execute(statement, values)}
        ids = sorted(found)
        return {
            hit.id: completing(
                hit,
                found.get(max((i for i in ids if i < hit.id), default=-1)),
                found.get(min((i for i in ids if i > hit.id), default=-1)),
            )
            for hit in messages
        }

    async def spoken_by(
        self, conversation_id: int, authors: Sequence[str], low: int, high: int, first: bool, n: int
    ) -> list[Hit]:
        """The first (or last) `n` messages of `authors` with low < id < high."""
        async with self._session() as session:
            ids = list(
                await session.scalars(
                    select(Message.id)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.author_name.in_(authors),
                        Message.id > low,
                        Message.id < high,
                    )
                    .order_by(Message.id if first else Message.id.desc())
                    .limit(n)
                )
            )
            return await message_hits(session, ids)

    async def period(
        self, conversation_id: int, start: datetime, end: datetime, dense: bool = False
    ) -> tuple[int, int] | None:
        """(first id - 1, last id + 1) of the conversation's messages between start and end;
        `dense`: the conversation holds most rows of its id range (memory/ranking.py)."""
        owner: ColumnElement[int] = Message.conversation_id.expression
        if dense and self._sqlite:
            # SQLite, without statistics, reads the conversation through its (conversation_id,
            # id) index: every row of a dense one (~190 ms CPU at a million messages). The time
            # index reads only the period's rows, in a dense conversation mostly its own
            # (~6 ms); `+ 0` keeps the conversation's index out of the plan.
            owner = owner + literal_column("0")
        async with self._session() as session:
            low, high = (
                await session.execute(
                    select(func.min(Message.id), func.max(Message.id)).where(
                        owner == conversation_id,
                        Message.created_at > start,
                        Message.created_at <= end,
                    )
                )
            ).one()
        return None if low is None else (int(low) - 1, int(high) + 1)
