"""Recall's main read in one statement: where the window starts, the conversation's best
matching older messages with the turns next to each, and whether documents were shared.

Recall runs on every message; done as separate reads (window start, one search per word, the
rows, their neighbours, the documents) it cost a dozen round trips. The parts depend on each
other only inside the database, so one statement carries them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memory.bounded import Bounded
from memory.context import BLANK, asks_sql
from memory.db import SqliteLink, linked, sqlite_rows
from memory.ranking import Columns, checked_too_few, ranked_sql, statement
from memory.search import MAX_TERMS, Hit, message_hit
from memory.store import AFTER_ALL, ConversationState
from memory.tables import Message

_WINDOW_START = (
    # The newest :rows messages, each with the tokens spent down to it (ROWS: ids are unique,
    # so the same sums as the default RANGE frame, which compares peers; summed as the index
    # reads them, newest first, so neither sorted nor read past :rows).
    "recent AS (SELECT id, tokens, sum(tokens + :per) OVER (ORDER BY id DESC ROWS UNBOUNDED "
    "PRECEDING) AS spent FROM messages WHERE conversation_id = :c AND id > :after "
    "ORDER BY id DESC LIMIT :rows), "
    # In one pass over them: the first id that fits `:window` tokens (those newer all fit),
    # whether the budget outlasted the rows read (`short`: read more to find the start), their
    # average size, and whether the conversation holds most rows of its id range (`dense` in
    # memory/ranking.py), judged when there are enough of them to be a sample. One pass, as
    # each word's arm uses `start` and SQLite prepares a copy of it for each: in five passes
    # preparing a statement of seven words took half as long again (see `prepare`).
    "start AS (SELECT coalesce(min(CASE WHEN spent <= :window THEN id END), :all) AS id, "
    "count(CASE WHEN spent <= :window THEN 1 END) >= :rows AS short, avg(tokens) AS size, "
    "count(*) >= (CASE WHEN :rows < :sample THEN :rows ELSE :sample END) "
    "AND count(*) * 2 > max(id) - min(id) + 1 AS dense FROM recent)"
)
_TURNS = (
    # Each hit with the ids of the turns before and after it (after_id < id < start), and
    # whether it asks something.
    "own AS MATERIALIZED (SELECT r.id, r.score, "
    "(SELECT max(m.id) FROM messages AS m WHERE m.conversation_id = :c AND m.id < r.id "
    "AND m.id > :after) AS prev, "
    "(SELECT min(m.id) FROM messages AS m WHERE m.conversation_id = :c AND m.id > r.id "
    f"AND m.id < (SELECT id FROM start)) AS next, {asks_sql('h')} AS asks "
    "FROM ranked AS r JOIN messages AS h ON h.id = r.id), "
    # The hits, and of their neighbours those that can complete one (memory/context.py
    # `completing`): a turn before that asks, the turn after one that asks.
    "picked AS (SELECT m.id, m.author_name, m.content, m.created_at, m.conversation_id, "
    "m.tokens, m.role, own.score, own.prev, own.next "
    "FROM messages AS m LEFT JOIN own ON own.id = m.id "
    "WHERE m.id IN (SELECT id FROM own UNION SELECT prev FROM own UNION SELECT next FROM own "
    f"WHERE asks) AND (own.id IS NOT NULL OR {asks_sql('m')} "
    "OR m.id IN (SELECT next FROM own WHERE asks)))"
)


# Conversations whose hints are remembered.
_HINTS = 4096
# Tokens per message guessed for a conversation not seen yet.
_TOKENS_GUESS = 16.0
# Messages that tell whether a conversation is dense.
_SAMPLE = 64
# Of a dense conversation's matches, the best this many times the hits asked for are checked
# first (memory/ranking.py `checked_too_few`): in a dense one nearly all are its own.
_CHECKED = 4


@dataclass(frozen=True)
class _Hint:
    dense: bool  # see `dense` in memory/ranking.py
    size: float  # average tokens of its newest messages


@dataclass(frozen=True)
class Found:
    start: int  # the window's first id (AFTER_ALL: not even the newest message fits)
    hits: list[Hit]  # best first
    # Of each hit's id: the turns just before and just after it that can complete it (None:
    # none in range, or one that cannot).
    turns: dict[int, tuple[Hit | None, Hit | None]] = field(default_factory=dict)
    documents: bool = False  # documents were shared in the searched conversations


class RecallQuery:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # On SQLite the driver's rows hold dates as stored (text): read as SQLAlchemy reads them.
        created_at = Message.__table__.c.created_at.type.dialect_impl(engine.dialect)
        self._date = created_at.result_processor(engine.dialect, None) if self._sqlite else None
        # What the last recall in a conversation found, to plan the next (any plan finds the
        # same messages): least recently used first.
        self._hints: Bounded[int, _Hint] = Bounded(_HINTS)

    async def find(
        self,
        conversation: ConversationState,
        terms: Sequence[str],
        limit: int,
        window: tuple[int, int],  # the window's tokens, and the tokens each message adds
        conversation_ids: Sequence[int],  # whose documents count (this one first)
    ) -> Found:
        """The best `limit` messages matching `terms` below the window as it starts when it has
        `window[0]` tokens (for the next message: the newest one included)."""
        tokens, per = window
        hint = self._hints.get(conversation.id) or _Hint(False, _TOKENS_GUESS)
        sql, values = self._statement(conversation, terms, hint.dense, conversation_ids)
        bounded = "checked" in values  # a dense conversation's matches, checked in rank order
        values.update(per=per, window=tokens, limit=limit)
        # Enough rows for the window if messages are at least half their usual size; else all
        # the rows it could hold (every message costs at least `per`).
        most = tokens // max(per, 1) + 1
        values["rows"] = min(tokens // (per + int(hint.size) // 2) + 1, most)
        if bounded:
            values["checked"] = _CHECKED * limit
        async with linked(self._engine) as connection:
            read = self._read(connection, sql)
            rows = await read(values)
            # Rows by position (a Row's attributes are looked up by name: several times slower).
            start, documents, dense, short, size, cut = rows[0][:6]
            short = short and values["rows"] < most
            if short or cut:  # again, with every row the window could hold, every match checked
                wider = {"rows": most} | ({"checked": -1} if bounded else {})
                rows = await read(values | wider)
                start, documents, dense, short, size, cut = rows[0][:6]
        self._hints.put(conversation.id, _Hint(bool(dense), size or hint.size))
        return _found(int(start), bool(documents), rows, self._date)

    def _statement(
        self,
        conversation: ConversationState,
        terms: Sequence[str],
        dense: bool,
        conversation_ids: Sequence[int],
    ) -> tuple[str, dict[str, Any]]:
        """The statement's text (on SQLite one per number of words and of conversations, and
        per `dense`), and the values given by the conversation and the words."""
        ranked, values = _ranked(self._sqlite, conversation.id, terms, dense)
        if self._sqlite:  # a parameter each (see `_read`): the text depends on their number only
            names = [f"d{n}" for n in range(len(conversation_ids))]
            documents = f"({', '.join(f':{name}' for name in names)})"
            values.update(zip(names, conversation_ids, strict=True))
        else:  # expanding: one prepared text for any number
            documents, values["documents"] = ":documents", list(conversation_ids)
        sql = (
            f"WITH {_WINDOW_START}, {ranked}, {_TURNS} "
            "SELECT s.id AS start, EXISTS (SELECT 1 FROM documents WHERE conversation_id "
            f"IN {documents}) AS documents, s.dense, s.short, "
            f"s.size, {checked_too_few('checked' in values)} AS cut, picked.* FROM start AS s "
            "LEFT JOIN picked ON 1 = 1"
        )
        values.update(
            c=conversation.id,
            after=conversation.reset_after,
            all=AFTER_ALL,
            sample=_SAMPLE,
            blank=BLANK,
        )
        return sql, values

    async def prepare(self) -> None:
        """Have SQLite prepare the statement for questions of every number of words, one
        statement per turn of the connection, reading nothing. SQLite prepares a text once per
        connection, and this one's preparation grows with its words (each word's arm copies the
        window start): 5-20 ms here, paid by the first reply to a question of each length (the
        overhead bench's p99). Elsewhere nothing: PostgreSQL plans at every execution anyway."""
        if not self._sqlite:
            return
        nothing = ConversationState(0, None, AFTER_ALL)  # reads no row
        prepared: set[str] = set()
        for count, dense in itertools.product(range(MAX_TERMS + 1), (False, True)):
            sql, values = self._statement(nothing, ["x"] * count, dense, [0])
            if sql in prepared:  # no words: one text either way
                continue
            prepared.add(sql)
            values.update(per=1, window=0, limit=0, rows=1)
            if "checked" in values:
                values["checked"] = 0
            async with linked(self._engine) as connection:
                await self._read(connection, sql)(values)

    def _read(
        self, connection: AsyncConnection | SqliteLink, sql: str
    ) -> Callable[[dict[str, Any]], Awaitable[Sequence[Sequence[Any]]]]:
        """How to run the statement: on SQLite by the driver directly (memory/db.py
        `sqlite_rows`: it takes no expanding parameter, hence a parameter per id), elsewhere
        through SQLAlchemy."""
        if isinstance(connection, SqliteLink):
            return partial(sqlite_rows, connection, sql)

        async def through_sqlalchemy(values: dict[str, Any]) -> Sequence[Sequence[Any]]:
            return (await connection.execute(statement(sql, values, Columns.RECALL), values)).all()

        return through_sqlalchemy

    def dense(self, conversation_id: int) -> bool:
        """Whether the last recall in the conversation found it dense (see `dense` in
        memory/ranking.py); False before any."""
        hint = self._hints.get(conversation_id)
        return hint is not None and hint.dense


def _found(
    start: int, documents: bool, rows: Sequence[Sequence[Any]], date: Callable[[Any], Any] | None
) -> Found:
    """`date`: what turns a stored date into a datetime (None: the rows hold datetimes)."""
    # After the first six columns of Columns.RECALL: the message, score, prev, next.
    hits: dict[int, Hit] = {}
    ranked: list[tuple[float, int, Any, Any]] = []  # score, id, prev, next
    for row in rows:
        message, (score, prev, next_) = row[6:13], row[13:]
        if message[0] is not None:
            hit = message_hit(message, date)
            hits[hit.id] = hit
            if score is not None:
                ranked.append((score, hit.id, prev, next_))
    ranked.sort(key=lambda r: (-r[0], -r[1]))
    return Found(
        start,
        [hits[id_] for _score, id_, _prev, _next in ranked],
        {id_: (hits.get(prev), hits.get(next_)) for _score, id_, prev, next_ in ranked},
        documents,
    )


def _ranked(
    sqlite: bool, conversation_id: int, terms: Sequence[str], dense: bool
) -> tuple[str, dict[str, Any]]:
    if not terms:  # semantic ranking only
        return "ranked AS (SELECT id, 0.0 AS score FROM messages WHERE 1 = 0)", {}
    return ranked_sql(
        sqlite,
        "messages",
        [conversation_id],
        terms,
        "(SELECT id FROM start)",
        dense,
    )
