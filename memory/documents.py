"""Shared documents (text, Markdown, PDF): read, cut into passages, stored for recall."""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.analysis import index_terms
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


def extract_text(kind: Kind, data: bytes) -> str:
    """The file's text. CPU-bound for PDFs: call it in a worker thread."""
    if kind == "text":
        return data.decode("utf-8-sig", errors="replace")
    # Only when a PDF is shared: pypdf costs ~7 MB resident.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError) as exc:
        raise UnreadableDocument("document.bad_pdf", error=exc) from exc


def split_passages(text: str, counter: TokenCounter, limit: int = PASSAGE_TOKENS) -> list[str]:
    """Paragraphs joined up to `limit` tokens each; a longer paragraph is cut between words."""
    pieces: list[tuple[str, str, int]] = []  # (separator before it, text, tokens)
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        tokens = counter.count(paragraph)
        if tokens <= limit:
            pieces.append(("\n\n", paragraph, tokens))
        else:
            pieces += [(" ", word, counter.count(" " + word)) for word in paragraph.split()]
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
class NewDocument:
    conversation_id: int
    author_id: str
    author_name: str
    filename: str
    data: bytes
    content_type: str = ""


class Documents:
    def __init__(self, engine: AsyncEngine, counter: TokenCounter) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self.counter = counter

    def _read(self, kind: Kind, data: bytes) -> list[tuple[str, int, str | None]]:
        passages = split_passages(extract_text(kind, data), self.counter)
        return [(p, self.counter.count(p), index_terms(p)) for p in passages]

    async def add(self, document: NewDocument) -> int:
        """Store a document's passages (all or none); returns how many there are."""
        kind = document_kind(document.filename, document.content_type)
        if kind is None:
            raise UnreadableDocument("document.unsupported")
        passages = await asyncio.to_thread(self._read, kind, document.data)
        if not passages:
            raise UnreadableDocument("document.empty")
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
                for content, tokens, terms in passages
            )
        return len(passages)
