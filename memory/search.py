"""Full-text search of stored messages and document passages.

SQLite: FTS5 tables (Porter-stemmed words), ranked by the rarity of the matched words;
PostgreSQL: the generated `search` tsvector ('english' configuration: the same stemming), ranked
by ts_rank. Both index the content and its `terms` column, the analyzed words of Korean, Chinese
and Japanese text (memory/analysis.py, migration 0008_recall_index); queries are analyzed alike.
Queries are built from plain words only (every other
character is dropped), so a person's text can never be a syntax error in either query
language. Words are ORed: ranking, not matching every word, decides what is relevant.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from memory.analysis import cjk_words, has_cjk, lone_han_kana
from memory.tables import Document, Message, Passage

_WORD = re.compile(r"[^\W_]+")
_MAX_TERMS = 16
# Matches read per word on SQLite (see _ranked_fts5).
_PER_TERM = 200
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

Table = Literal["messages", "document_passages"]
_FTS_TABLES: dict[Table, str] = {"messages": "messages_fts", "document_passages": "passages_fts"}


# Korean predicates and forms in nearly every question ("어떻게 했어?"), found by the analyzer.
_KOREAN_STOPWORDS = frozenset(
    {"하다", "되다", "있다", "없다", "이다", "않다", "같다", "어떻다", "그렇다", "이렇다", "알다"}
)


def search_terms(text: str) -> list[str]:
    """The distinct searchable words of `text`, lowercased, at most _MAX_TERMS: its Latin (and
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
    )[:_MAX_TERMS]


async def query_terms(text: str) -> list[str]:
    """`search_terms`, in a worker thread when the text needs analysis."""
    if has_cjk(text):
        return await asyncio.to_thread(search_terms, text)
    return search_terms(text)


def _prefix(term: str) -> bool:
    # Other non-Latin scripts keep matching on a word's start, as before analysis existed.
    return (not term.isascii() and not has_cjk(term)) or lone_han_kana(term)


def fts5_query(terms: Sequence[str], conversation_ids: Sequence[int]) -> str:
    """An FTS5 MATCH expression: any of `terms`, only in the given conversations."""
    words = " OR ".join(f'"{t}"*' if _prefix(t) else f'"{t}"' for t in terms)
    conversations = " OR ".join(f'"{int(c)}"' for c in conversation_ids)
    return f"{{conversation_id}} : ({conversations}) AND - {{conversation_id}} : ({words})"


def tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery('english', …) expression: any of `terms`."""
    return " | ".join(f"'{t}':*" if _prefix(t) else f"'{t}'" for t in terms)


@dataclass(frozen=True)
class Hit:
    """A recalled message or document passage."""

    id: int
    author_name: str
    content: str
    created_at: datetime
    filename: str | None = None  # set for document passages
    conversation_id: int = 0


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
        before_id: int | None = None,
    ) -> list[Hit]:
        """The best `limit` messages matching `terms` with after_id < id < before_id."""
        if not terms or not conversation_ids:
            return []
        async with self._session() as session:
            ids = await self._ranked(
                session, "messages", conversation_ids, terms, limit, after_id, before_id
            )
            return await message_hits(session, ids)

    async def passages(
        self, conversation_ids: Sequence[int], terms: Sequence[str], limit: int
    ) -> list[Hit]:
        """The best `limit` passages of documents shared in the given conversations."""
        if not terms or not conversation_ids:
            return []
        async with self._session() as session:
            ids = await self._ranked(session, "document_passages", conversation_ids, terms, limit)
            return await _passage_hits(session, ids)

    async def hits(self, message_ids: Sequence[int], passage_ids: Sequence[int]) -> list[Hit]:
        """The given messages, then the given passages, each in the order given."""
        async with self._session() as session:
            return [
                *await message_hits(session, message_ids),
                *await _passage_hits(session, passage_ids),
            ]

    async def _ranked(
        self,
        session: AsyncSession,
        table: Table,
        conversation_ids: Sequence[int],
        terms: Sequence[str],
        limit: int,
        after_id: int = 0,
        before_id: int | None = None,
    ) -> list[int]:
        """Row ids, best first."""
        before = before_id if before_id is not None else 2**62
        if self._sqlite:
            return await _ranked_fts5(
                session, _FTS_TABLES[table], conversation_ids, terms, limit, after_id, before
            )
        # GIN finds the matches; ts_rank orders them.
        statement = text(
            f"SELECT id FROM {table}, to_tsquery('english', :query) AS q "
            "WHERE conversation_id IN :conversations AND id > :after AND id < :before "
            "AND search @@ q ORDER BY ts_rank(search, q) DESC LIMIT :limit"
        ).bindparams(bindparam("conversations", list(conversation_ids), expanding=True))
        result = await session.execute(
            statement,
            {"query": tsquery(terms), "after": after_id, "before": before, "limit": limit},
        )
        return [int(row[0]) for row in result]


async def message_hits(session: AsyncSession, ids: Sequence[int]) -> list[Hit]:
    rows = (
        {row.id: row for row in await session.scalars(select(Message).where(Message.id.in_(ids)))}
        if ids
        else {}
    )
    return [
        Hit(
            rows[i].id,
            rows[i].author_name,
            rows[i].content,
            rows[i].created_at,
            conversation_id=rows[i].conversation_id,
        )
        for i in ids
        if i in rows
    ]


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
        Hit(p.id, d.author_name, p.content, d.created_at, d.filename, p.conversation_id)
        for p, d in (rows[i] for i in ids if i in rows)
    ]


async def _ranked_fts5(
    session: AsyncSession,
    fts: str,
    conversation_ids: Sequence[int],
    terms: Sequence[str],
    limit: int,
    after_id: int,
    before_id: int,
) -> list[int]:
    """Rank by the summed IDF of the terms a row contains, newest first among equals.

    BM25 over every match costs time in proportion to the matches: seconds for common words in
    a million messages. Instead each term reads only its newest _PER_TERM matches (in index
    order, which FTS5 stops early); a common word's frequency is extrapolated from how far back
    those reach. Rare words, which decide relevance, are read in full.
    """
    statement = text(
        f"SELECT rowid FROM {fts} WHERE {fts} MATCH :query AND rowid > :after "
        "AND rowid < :before ORDER BY rowid DESC LIMIT :limit"
    )
    found: list[list[int]] = []
    for term in terms:
        result = await session.execute(
            statement,
            {
                "query": fts5_query([term], conversation_ids),
                "after": after_id,
                "before": before_id,
                "limit": _PER_TERM,
            },
        )
        found.append([int(row[0]) for row in result])
    newest = max((rows[0] for rows in found if rows), default=None)
    if newest is None:
        return []
    searched = newest - after_id + 1  # rows in range, at most (ids are shared by conversations)
    scores: dict[int, float] = {}
    for rows in found:
        if not rows:
            continue
        frequency = (
            len(rows)
            if len(rows) < _PER_TERM
            else min(searched, len(rows) * (rows[0] - after_id) / max(rows[0] - rows[-1], 1))
        )
        weight = math.log(1 + searched / frequency)
        for row in rows:
            scores[row] = scores.get(row, 0.0) + weight
    return sorted(scores, key=lambda row: (-scores[row], -row))[:limit]
