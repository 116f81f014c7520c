"""Shared documents (text, Markdown, PDF): read, cut into passages, stored for recall."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.analysis import index_terms
from memory.extract import Cut, Extracted, ExtractionFailed, Limits, decode_text, extract_pdf
from memory.problems import Problem
from memory.tables import Document, Passage
from memory.tokens import TokenCounter

Kind = Literal["text", "pdf"]
_BY_SUFFIX: dict[str, Kind] = {".txt": "text", ".md": "text", ".markdown": "text", ".pdf": "pdf"}
_BY_TYPE: dict[str, Kind] = {
    "text/plain": "text",
    "text/markdown": "text",
    "application/pdf": "pdf",
}
# Small enough that several passages fit the recall share, large enough to keep context.
PASSAGE_TOKENS = 200
_PARAGRAPH = re.compile(r"\n\s*\n")


class UnreadableDocument(Problem):
    """The file is not a supported type, or no text could be read from it (the reason says
    which)."""


def document_kind(filename: str, content_type: str = "") -> Kind | None:
    """Whether (and how) a shared file can be read; None for other files."""
    kind = _BY_SUFFIX.get(PurePath(filename).suffix.lower())
    return kind or _BY_TYPE.get(content_type.split(";")[0].strip().lower())


def split_passages(text: str, counter: TokenCounter, limit: int = PASSAGE_TOKENS) -> list[str]:
    """Paragraphs joined up to `limit` tokens each; a longer paragraph is cut between words,
    and a "word" longer than a passage (a pasted blob) into pieces."""
    pieces: list[tuple[str, str, int]] = []  # (separator before it, text, tokens)
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        tokens = counter.count(paragraph)
        if tokens <= limit:
            pieces.append(("\n\n", paragraph, tokens))
            continue
        for word in paragraph.split():
            for start in range(0, len(word), limit * 2):
                piece = word[start : start + limit * 2]
                pieces.append((" " if start == 0 else "", piece, counter.count(" " + piece)))
    passages: list[str] = []
    current, spent = "", 0
    for separator, piece, tokens in pieces:
        if not piece:
            continue
        if current and spent + tokens > limit:
            passages.append(current)
            current, spent = "", 0
        current = f"{current}{separator}{piece}" if current else piece
        spent += tokens + 1  # the separator
    if current:
        passages.append(current)
    return passages


@dataclass(frozen=True)
class ReadDocument:
    """A document's passages (text, tokens, index terms), and the limit that cut it, if any."""

    passages: list[tuple[str, int, str | None]]
    cut: Cut | Literal["passages"] | None = None


@dataclass(frozen=True)
class NewDocument:
    conversation_id: int
    author_id: str
    author_name: str
    filename: str


class Documents:
    def __init__(self, engine: AsyncEngine, counter: TokenCounter, limits: Limits) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self.counter = counter
        self.limits = limits

    async def read(self, filename: str, data: bytes, content_type: str = "") -> ReadDocument:
        """The file's passages, within the limits (slow: call it outside any lock)."""
        kind = document_kind(filename, content_type)
        if kind is None:
            raise UnreadableDocument("document.unsupported")
        limits = self.limits
        try:
            if kind == "pdf":
                extracted = await extract_pdf(data, limits)
            else:
                extracted = await asyncio.to_thread(decode_text, data, limits.max_chars)
        except ExtractionFailed as exc:
            key = "document.too_slow" if exc.timed_out else "document.bad_pdf"
            raise UnreadableDocument(key, error=exc.detail) from exc
        read = await asyncio.to_thread(self._passages, extracted)
        if not read.passages:
            raise UnreadableDocument("document.empty")
        return read

    def _passages(self, extracted: Extracted) -> ReadDocument:
        passages = split_passages(extracted.text, self.counter)
        cut: Cut | Literal["passages"] | None = extracted.cut
        if len(passages) > self.limits.max_passages:
            passages, cut = passages[: self.limits.max_passages], "passages"
        return ReadDocument([(p, self.counter.count(p), index_terms(p)) for p in passages], cut)

    async def store(self, document: NewDocument, read: ReadDocument) -> int:
        """Store a read document's passages (all or none); returns how many there are."""
        async with self._session() as session, session.begin():
            row = Document(
                conversation_id=document.conversation_id,
                author_id=document.author_id,
                author_name=document.author_name,
                filename=document.filename,
            )
            session.add(row)
            await session.flush()
            session.add_all(
                Passage(
                    document_id=row.id,
                    conversation_id=document.conversation_id,
                    content=content,
                    tokens=tokens,
                    terms=terms,
                )
                for content, tokens, terms in read.passages
            )
        return len(read.passages)
