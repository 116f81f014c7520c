"""Semantic recall: embeddings of messages and document passages (made by a TextEmbedder,
bot/embedder.py, in the background after replies), and a ranking of a bounded pool of
candidates by cosine similarity to the new message (fused with the keyword ranking by recall).

A person's message is embedded as the model sees it, with its speaker ("[Alice] my brother
passed the driving test"): in a group chat "my brother" means nothing without who said it, and
questions name the person ("where does Alice's brother want to drive?"). With a real model
(multilingual-e5-small, bench/README.md) that puts both facts of every multi-hop question
among the best dozen of 1,400 turns, against about half (English) or a fifth (Korean) without.

Vectors are stored normalized, as little-endian float32 bytes: similarity is a dot product, and
the bytes read back the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal, Protocol

from sqlalchemy import FromClause, Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.search import FullText, Hit
from memory.store import AFTER_ALL, ConversationState
from memory.tables import Message, MessageVectors, Passage, PassageVectors
from memory.tokens import render

log = logging.getLogger(__name__)

Kind = Literal["messages", "passages"]
# (the rows, their vectors)
_SOURCES: dict[Kind, tuple[FromClause, Table]] = {
    "messages": (Message.__table__, MessageVectors),
    "passages": (Passage.__table__, PassageVectors),
}
_DTYPE = "<f4"  # little-endian float32
_BATCH = 64  # texts per embeddings request
_PER_RUN = 256  # texts embedded per conversation and kind after one reply: a backlog is spread
_CHUNK = 2_000  # ids read per step while looking for rows without a vector
_CHUNKS_PER_RUN = 10  # so one run reads at most 20,000 ids
# Scored besides the keyword candidates: the newest embedded messages below the window (months
# of a busy group chat: the 300 before left most of it unsearchable by meaning), and the newest
# passages. Bounded, so ranking costs the same at any history length: 2,000 vectors are 3 MB
# (384 dimensions) to 12 MB (1,536) read per question, ~10-20 ms at 1M messages on SQLite
# (bench/README.md).
_MESSAGE_POOL = 2_000
_PASSAGE_POOL = 100


def pack(vector: Sequence[float]) -> bytes:
    import numpy as np  # only with embeddings on: numpy costs ~11 MB resident

    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm else array).astype(_DTYPE).tobytes()


class TextEmbedder(Protocol):
    """Packed vectors for texts (bot/embedder.py asks the model)."""

    @property
    def off(self) -> bool:
        """The endpoint refused embeddings for good."""

    async def embed(self, texts: list[str], waiting: bool = False) -> list[bytes] | None:
        """None when the texts cannot be embedded now; `waiting`: a person waits for it."""


class Vectors:
    """Storage: one vector per message or passage, under the model that made it."""

    def __init__(self, engine: AsyncEngine, model: str) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self.model = model
        # Bytes of one vector as the endpoint makes them now (None until it has made one):
        # a vector of another size (the model behind the name was swapped) counts as missing.
        self.size: int | None = None

    async def missing(
        self, kind: Kind, conversation_id: int, below: int, limit: int
    ) -> tuple[list[tuple[int, str]], int | None]:
        """Up to `limit` (id, text) rows without a vector among the conversation's newest
        _CHUNK ids below `below`, newest first, and where to look next (None: at the bottom)."""
        source, vectors = _SOURCES[kind]
        async with self._session() as session:
            ids = list(
                await session.scalars(
                    select(source.c.id)
                    .where(source.c.conversation_id == conversation_id, source.c.id < below)
                    .order_by(source.c.id.desc())
                    .limit(_CHUNK)
                )
            )
            if not ids:
                return [], None
            same = [vectors.c.id == source.c.id, vectors.c.model == self.model]
            if self.size is not None:
                same.append(func.length(vectors.c.vector) == self.size)
            embedded = select(vectors.c.id).where(*same).exists()
            columns = [source.c.id, source.c.content]
            if kind == "messages":  # embedded with their speaker
                columns += [source.c.role, source.c.author_name]
            rows = [
                (int(row[0]), render(row[2], row[3], row[1]) if len(row) > 2 else str(row[1]))
                for row in await session.execute(
                    select(*columns)
                    .where(
                        source.c.conversation_id == conversation_id,
                        source.c.id >= ids[-1],
                        source.c.id < below,
                        ~embedded,
                    )
                    .order_by(source.c.id.desc())
                    .limit(limit)
                )
            ]
        if len(rows) == limit:
            return rows, rows[-1][0]
        return rows, ids[-1] if len(ids) == _CHUNK else None

    async def save(
        self, kind: Kind, conversation_id: int, rows: Sequence[tuple[int, bytes]]
    ) -> None:
        _source, vectors = _SOURCES[kind]
        ids = [row_id for row_id, _vector in rows]
        try:
            async with self._session() as session, session.begin():
                # A vector of another model is replaced.
                await session.execute(delete(vectors).where(vectors.c.id.in_(ids)))
                await session.execute(
                    insert(vectors),
                    [
                        {
                            "id": row_id,
                            "conversation_id": conversation_id,
                            "model": self.model,
                            "vector": vector,
                        }
                        for row_id, vector in rows
                    ],
                )
        except IntegrityError as exc:
            # A row was deleted (/forget me, retention) while it was being embedded.
            log.info(
                "%s vectors of conversation %s not saved (rows gone): %s",
                kind,
                conversation_id,
                exc.orig,
            )

    async def of(self, kind: Kind, ids: Sequence[int]) -> list[tuple[int, bytes]]:
        if not ids:
            return []
        _source, vectors = _SOURCES[kind]
        async with self._session() as session:
            result = await session.execute(
                select(vectors.c.id, vectors.c.vector).where(
                    vectors.c.id.in_(ids), vectors.c.model == self.model
                )
            )
            return [(int(row[0]), bytes(row[1])) for row in result]

    async def newest(
        self,
        kind: Kind,
        conversation_ids: Sequence[int],
        after_id: int,
        before_id: int | None,
        limit: int,
    ) -> list[tuple[int, bytes]]:
        """The newest `limit` vectors with after_id < id < before_id."""
        _source, vectors = _SOURCES[kind]
        async with self._session() as session:
            result = await session.execute(
                select(vectors.c.id, vectors.c.vector)
                .where(
                    vectors.c.conversation_id.in_(conversation_ids),
                    vectors.c.model == self.model,
                    vectors.c.id > after_id,
                    vectors.c.id < (AFTER_ALL if before_id is None else before_id),
                )
                .order_by(vectors.c.id.desc())
                .limit(limit)
            )
            return [(int(row[0]), bytes(row[1])) for row in result]


class Indexer:
    """Embeds a conversation's messages and passages that have no vector yet, at most _PER_RUN
    of each per run (bot/embedder.py runs it after every reply)."""

    def __init__(self, vectors: Vectors, embedder: TextEmbedder) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self._running: set[int] = set()
        # Where the walk down a conversation's history continues (absent: from the top).
        self._resume: dict[tuple[Kind, int], int] = {}

    async def index(self, conversation_id: int) -> None:
        if self.embedder.off or conversation_id in self._running:
            return
        self._running.add(conversation_id)
        try:
            for kind in _SOURCES:
                await self._index(kind, conversation_id)
        finally:
            self._running.discard(conversation_id)

    async def _index(self, kind: Kind, conversation_id: int) -> None:
        # The newest rows first (just written), then further down from where the last run
        # stopped; at the bottom the walk starts over, so rows missed for any reason (an import,
        # a failed batch) are found within a bounded amount of work per run.
        todo, below = await self.vectors.missing(kind, conversation_id, AFTER_ALL, _PER_RUN)
        below = self._resume.pop((kind, conversation_id), below)
        for _chunk in range(_CHUNKS_PER_RUN - 1):
            if below is None or len(todo) >= _PER_RUN:
                break
            more, below = await self.vectors.missing(
                kind, conversation_id, below, _PER_RUN - len(todo)
            )
            todo += [row for row in more if row not in todo]  # the top may be read twice
        if below is not None:
            self._resume[(kind, conversation_id)] = below
        for start in range(0, len(todo), _BATCH):
            batch = todo[start : start + _BATCH]
            vectors = await self.embedder.embed([content for _id, content in batch])
            if vectors is None:
                return
            self.vectors.size = len(vectors[0]) if vectors else self.vectors.size
            await self.vectors.save(
                kind,
                conversation_id,
                [
                    (row_id, vector)
                    for (row_id, _content), vector in zip(batch, vectors, strict=True)
                ],
            )


class SemanticRanking:
    """Ranks a bounded pool by similarity to the new message: the keyword candidates, the
    newest embedded messages below the window (up to _MESSAGE_POOL) and the newest passages."""

    def __init__(self, vectors: Vectors, embedder: TextEmbedder, search: FullText) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self.search = search

    async def rank(
        self,
        text: str,
        conversation: ConversationState,
        before_id: int | None,
        scope: Sequence[int],
        candidates: Sequence[Hit],
        limit: int,
    ) -> list[Hit]:
        """The best `limit` of the pool; empty when the question cannot be embedded."""
        question = await self.embedder.embed([text], waiting=True)
        if not question:
            return []
        self.vectors.size = len(question[0])  # vectors of another size get re-embedded
        pool: dict[tuple[Kind, int], bytes] = {}
        for kind in _SOURCES:
            ids = [
                hit.id for hit in candidates if (hit.filename is not None) == (kind == "passages")
            ]
            pool.update(((kind, i), vector) for i, vector in await self.vectors.of(kind, ids))
        newest: tuple[tuple[Kind, list[tuple[int, bytes]]], ...] = (
            (
                "messages",
                await self.vectors.newest(
                    "messages",
                    [conversation.id],
                    conversation.reset_after,
                    before_id,
                    _MESSAGE_POOL,
                ),
            ),
            ("passages", await self.vectors.newest("passages", scope, 0, None, _PASSAGE_POOL)),
        )
        for kind, rows in newest:
            pool.update(((kind, i), vector) for i, vector in rows)
        # Same model name, other size (the endpoint's model was swapped): not comparable.
        keys = [key for key, vector in pool.items() if len(vector) == len(question[0])]
        if not keys:
            return []
        # ~2 ms per 450 vectors of 1,536 dimensions: off the event loop.
        ranked = await asyncio.to_thread(
            _most_similar, [pool[key] for key in keys], question[0], limit
        )
        best = [keys[i] for i in ranked]
        hits = await self.search.hits(
            [i for kind, i in best if kind == "messages"],
            [i for kind, i in best if kind == "passages"],
        )
        by_key = {
            ("passages" if hit.filename is not None else "messages", hit.id): hit for hit in hits
        }
        return [by_key[key] for key in best if key in by_key]


def _most_similar(vectors: list[bytes], question: bytes, limit: int) -> list[int]:
    """Indexes of the `limit` vectors most similar to `question` (all normalized), best first;
    no similarity at all is no reason to recall something."""
    import numpy as np

    matrix = np.frombuffer(b"".join(vectors), _DTYPE).reshape(len(vectors), -1)
    scores = matrix @ np.frombuffer(question, _DTYPE)
    return [int(i) for i in np.argsort(-scores, kind="stable")[:limit] if scores[i] > 0]
