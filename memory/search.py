"""Full-text search of stored messages and document passages.

SQLite: FTS5 tables (Porter-stemmed words), ranked by the rarity of the matched words;
PostgreSQL: the generated `search` tsvector ('english' configuration: the same stemming), ranked
the same way (memory/ranking.py). Both index the content and its `terms` column, the analyzed
words of Korean, Chinese and Japanese text (memory/analysis.py, migration 0008_recall_index);
queries are analyzed alike.
Queries are built from plain words only (every other character is dropped), so a person's text
can never be a syntax error in either query language. Words are ORed: ranking, not matching
every word, decides what is relevant (memory/ranking.py: one statement per search, however
many words).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from memory.analysis import cjk_words, has_cjk
from memory.ranking import Columns, Table, ranked_sql, statement
from memory.tables import Document, Message, Passage
from memory.window import AFTER_ALL

_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 16
# Words found in nearly every English message: they cost time and add nothing to the ranking.
_STOPWORDS = frozenset(
    {
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    }
)

# Korean predicates and forms in nearly every question ("어떻게 했어?"), found by the analyzer.
_KOREAN_STOPWORDS = frozenset(
    {"하다", "되다", "있다", "없다", "이다", "않다", "같다", "어떻다", "그렇다", "이렇다", "알다"}
)


def search_terms(text: str) -> list[str]:
    """The distinct searchable words of `text`, lowercased, at most MAX_TERMS: its Latin (and
    other spaced-script) words as written, then the analyzed words of its Korean, Chinese and
    Japanese parts (see memory/analysis.py). CPU-bound for such text: see `query_terms`."""
    words = [w for w in _WORD.findall(text.lower()) if not has_cjk(w)]
    if has_cjk(text):
        words += cjk_words(text.lower())
    return list(
        dict.fromkeys(
            w
            for w in words
            if w not in _STOPWORDS
            and w not in _KOREAN_STOPWORDS
            and not (w.isascii() and len(w) < 2)
        )
    )[:MAX_TERMS]


async def query_terms(text: str) -> list[str]:
    """`search_terms`, in a worker thread when the text needs analysis."""
    if has_cjk(text):
        return await asyncio.to_thread(search_terms, text)
    return search_terms(text)


class Hit(NamedTuple):
    """A recalled message or document passage (a tuple: recall builds dozens per message)."""

    id: int
    author_name: str
    content: str
    created_at: datetime
    filename: str | None = None  # set for document passages
    conversation_id: int = 0
    # As stored: a message's tokens as the window renders it (memory.tokens.render, by its
    # role), a passage's own; 0: not known.
    tokens: int = 0
    role: str | None = None  # a message's


class FullText:
    def __init__(self, engine: AsyncEngine) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"

    async def messages(
        self,
        conversation_ids: Sequence[int],
        terms: Sequence[str],
        limit: int,
        after_id: int = 0,
        before_id: int = AFTER_ALL,
        dense: bool = False,
    ) -> list[Hit]:
        """The best `limit` messages matching `terms` with after_id < id < before_id; `dense`:
        the one conversation given holds most rows of that range (see memory/ranking.py)."""
        rows = await self._best(
            "messages",
            "SELECT m.id, m.author_name, m.content, m.created_at, m.conversation_id, m.tokens, "
            "m.role FROM ranked JOIN messages AS m ON m.id = ranked.id "
            "ORDER BY ranked.score DESC, m.id DESC",
            Columns.MESSAGE_HITS,
            conversation_ids,
            terms,
            {"after": after_id, "before": before_id, "limit": limit},
            dense,
        )
        return [message_hit(row) for row in rows]

    async def passages(
        self, conversation_ids: Sequence[int], terms: Sequence[str], limit: int
    ) -> list[Hit]:
        """The best `limit` passages of documents shared in the given conversations."""
        rows = await self._best(
            "document_passages",
            "SELECT p.id, d.author_name, p.content, d.created_at, d.filename, p.conversation_id, "
            "p.tokens FROM ranked JOIN document_passages AS p ON p.id = ranked.id "
            "JOIN documents AS d ON d.id = p.document_id ORDER BY ranked.score DESC, p.id DESC",
            Columns.PASSAGE_HITS,
            conversation_ids,
            terms,
            {"after": 0, "before": AFTER_ALL, "limit": limit},
        )
        return [Hit(*row) for row in rows]

    async def _best(
        self,
        table: Table,
        select_ranked: str,
        columns: Columns,
        conversation_ids: Sequence[int],
        terms: Sequence[str],
        bounds: dict[str, int],
        dense: bool = False,
    ) -> list[Any]:
        """The rows `select_ranked` picks from `table`'s matches of `terms`, ranked
        (memory/ranking.py), within `bounds` (after, before: ids; limit)."""
        if not terms or not conversation_ids:
            return []
        dense = dense and len(conversation_ids) == 1
        ranked, values = ranked_sql(self._sqlite, table, conversation_ids, terms, dense=dense)
        query = statement(f"WITH {ranked} {select_ranked}", values, columns)
        async with self._session() as session:
            return list(await session.execute(query, values | bounds))

    async def hits(self, message_ids: Sequence[int], passage_ids: Sequence[int]) -> list[Hit]:
        """The given messages, then the given passages, each in the order given."""
        async with self._session() as session:
            return [
                *await message_hits(session, message_ids),
                *await _passage_hits(session, passage_ids),
            ]


def message_hit(row: Any, date: Callable[[Any], datetime] | None = None) -> Hit:
    """`row`: a Row of Columns.MESSAGE_HITS (or its values); `date`: what turns its stored date
    into a datetime (None: it is one)."""
    # By position: a Row's attributes are looked up by name, several times slower.
    id_, author_name, content, created_at, conversation_id, tokens, role = row
    if date is not None:
        created_at = date(created_at)
    return Hit(id_, author_name, content, created_at, None, conversation_id, tokens, role)


async def message_hits(session: AsyncSession, ids: Sequence[int]) -> list[Hit]:
    rows = (
        {
            row.id: row
            for row in await session.execute(
                select(*Columns.MESSAGE_HITS.value).where(Message.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    return [message_hit(rows[i]) for i in ids if i in rows]


async def _passage_hits(session: AsyncSession, ids: Sequence[int]) -> list[Hit]:
    rows = (
        {
            passage.id: (passage, document)
            for passage, document in await session.execute(
                select(Passage, Document)
                .join(Document, Document.id == Passage.document_id)
                .where(Passage.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    return [
        Hit(p.id, d.author_name, p.content, d.created_at, d.filename, p.conversation_id, p.tokens)
        for p, d in (rows[i] for i in ids if i in rows)
    ]
