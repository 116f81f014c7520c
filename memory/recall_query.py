"""Recall's main read in one statement: where the window starts, the conversation's best
matching older messages with the turns next to each, and whether documents were shared.

Recall runs on every message; done as separate reads (window start, one search per word, the
rows, their neighbours, the documents) it cost a dozen round trips. The parts depend on each
other only inside the database, so one statement carries them all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, Float, Integer, column, text
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.ranking import ranked_sql
from memory.search import Hit, message_hit
from memory.store import AFTER_ALL, ConversationState
from memory.tables import Message

_WINDOW_START = (
    # The newest messages that fit `:window` tokens, newest first, stopping at the first that
    # does not (each costs at least :per, so :rows rows always reach past the budget).
    "recent AS (SELECT id, tokens FROM messages WHERE conversation_id = :c AND id > :after "
    "ORDER BY id DESC LIMIT :rows), "
    "start AS (SELECT coalesce((SELECT min(id) FROM (SELECT id, sum(tokens + :per) "
    "OVER (ORDER BY id DESC) AS spent FROM recent) AS fitting WHERE spent <= :window), :all) "
    "AS id), "
    # Whether the conversation holds most rows of its id range (`dense` in memory/ranking.py):
    # judged on its newest rows, when there are enough of them to be a sample.
    "density AS (SELECT count(*) >= :rows AND count(*) * 2 > max(id) - min(id) + 1 AS dense "
    "FROM recent)"
)
_TURNS = (
    # Each hit with the ids of the turns before and after it (after_id < id < start).
    "own AS MATERIALIZED (SELECT r.id, r.score, "
    "(SELECT max(m.id) FROM messages AS m WHERE m.conversation_id = :c AND m.id < r.id "
    "AND m.id > :after) AS prev, "
    "(SELECT min(m.id) FROM messages AS m WHERE m.conversation_id = :c AND m.id > r.id "
    "AND m.id < (SELECT id FROM start)) AS next FROM ranked AS r), "
    "picked AS (SELECT m.id, m.author_name, m.content, m.created_at, m.conversation_id, "
    "own.score, own.prev, own.next FROM messages AS m LEFT JOIN own ON own.id = m.id "
    "WHERE m.id IN (SELECT id FROM own UNION SELECT prev FROM own UNION SELECT next FROM own))"
)


# Conversations whose density is remembered.
_DENSITY_CACHE = 4096


@dataclass(frozen=True)
class Found:
    start: int  # the window's first id (AFTER_ALL: not even the newest message fits)
    hits: list[Hit]  # best first
    # Of each hit's id: the turns just before and just after it (None: none in range).
    turns: dict[int, tuple[Hit | None, Hit | None]] = field(default_factory=dict)
    documents: bool = False  # documents were shared in the searched conversations


class RecallQuery:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # Conversations found dense by their last recall (a hint for the next: either way of
        # searching finds the conversation's own messages), least recently used first.
        self._dense: OrderedDict[int, bool] = OrderedDict()

    def _is_dense(self, conversation_id: int) -> bool:
        return self._dense.get(conversation_id, False)

    def _note_density(self, conversation_id: int, dense: bool) -> None:
        self._dense[conversation_id] = dense
        self._dense.move_to_end(conversation_id)
        if len(self._dense) > _DENSITY_CACHE:
            self._dense.popitem(last=False)

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
        ranked, values = _ranked(
            self._sqlite, conversation.id, terms, self._is_dense(conversation.id)
        )
        documents = ", ".join(str(int(i)) for i in conversation_ids)
        statement = text(
            f"WITH {_WINDOW_START}, {ranked}, {_TURNS} "
            f"SELECT s.id AS start, EXISTS (SELECT 1 FROM documents WHERE conversation_id "
            f"IN ({documents})) AS documents, (SELECT dense FROM density) AS dense, picked.* "
            "FROM start AS s LEFT JOIN picked ON 1 = 1"
        ).columns(
            column("start", Integer),
            column("documents", Boolean),
            column("dense", Boolean),
            *_HIT_COLUMNS,
            column("score", Float),
            column("prev", Integer),
            column("next", Integer),
        )
        values.update(
            c=conversation.id,
            after=conversation.reset_after,
            rows=tokens // max(per, 1) + 1,
            per=per,
            window=tokens,
            all=AFTER_ALL,
            limit=limit,
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement, values)).all()
        self._note_density(conversation.id, bool(rows[0].dense))
        found = {row.id: message_hit(row) for row in rows if row.id is not None}
        ranked_rows = sorted(
            (row for row in rows if row.score is not None), key=lambda r: (-r.score, -r.id)
        )
        return Found(
            int(rows[0].start),
            [found[row.id] for row in ranked_rows],
            {row.id: (found.get(row.prev), found.get(row.next)) for row in ranked_rows},
            bool(rows[0].documents),
        )


_HIT_COLUMNS = (
    Message.id,
    Message.author_name,
    Message.content,
    Message.created_at,
    Message.conversation_id,
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
