"""Shared documents (text, Markdown, PDF): read, cut into passages, stored for recall."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.analysis import index_terms
from memory.problems import Problem
from memory.tables import Document, Passage
from memory.tokens import TokenCounter

Kind = Literal["text", "pdf"]
# Text files Parley reads, from chat attachments and `parley memory add-file` alike. Platforms
# label many source files application/octet-stream: the suffix counts too.
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
    }
)
TEXT_SUFFIXES = frozenset(
    {
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".log",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".xml",
        ".html",
        ".css",
        ".py",
        ".js",
        ".ts",
        ".sh",
        ".sql",
        ".c",
        ".h",
        ".cpp",
        ".rs",
        ".go",
        ".java",
        ".kt",
        ".rb",
        ".php",
        ".diff",
        ".patch",
    }
)
# Tried in order when a text file is not UTF-8: what such files mostly are here (Korean
# Windows, then Western Windows). Anything else is refused rather than read as mojibake.
_LEGACY_ENCODINGS = ("utf-16", "cp949", "cp1252")
# Small enough that several passages fit the recall share, large enough to keep context.
PASSAGE_TOKENS = 200
_PARAGRAPH = re.compile(r"\n\s*\n")


class UnreadableDocument(Problem):
    """The file is not a supported type, or no text could be read from it (the reason says
    which)."""


def is_text(filename: str, content_type: str = "") -> bool:
    mime = content_type.split(";")[0].strip().lower()
    suffix = PurePath(filename).suffix.lower()
    return mime.startswith("text/") or mime in TEXT_TYPES or suffix in TEXT_SUFFIXES


def document_kind(filename: str, content_type: str = "") -> Kind | None:
    """Whether (and how) a shared file can be read; None for other files."""
    if PurePath(filename).suffix.lower() == ".pdf" or content_type.startswith("application/pdf"):
        return "pdf"
    return "text" if is_text(filename, content_type) else None


def decode_text(data: bytes) -> str:
    """A text file's characters: UTF-8 (with or without BOM), UTF-16 with a BOM, or a legacy
    Korean/Western encoding when that reads cleanly; otherwise UnreadableDocument."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding in _LEGACY_ENCODINGS:
        if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise UnreadableDocument("document.encoding")


def extract_text(kind: Kind, data: bytes) -> str:
    """The file's text. CPU-bound for PDFs: call it in a worker thread."""
    if kind == "text":
        return decode_text(data)
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
class Added:
    passages: int
    duplicate_of: str | None = None  # the same bytes were stored before, under this name


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

    async def add(self, document: NewDocument) -> Added:
        """Store a document's passages (all or none), or find the same bytes already stored in
        the conversation (then nothing is stored)."""
        kind = document_kind(document.filename, document.content_type)
        if kind is None:
            raise UnreadableDocument("document.unsupported")
        digest = hashlib.sha256(document.data).hexdigest()
        async with self._session() as session:
            earlier = (
                await session.execute(
                    select(Document.filename, Document.id).where(
                        Document.conversation_id == document.conversation_id,
                        Document.content_sha256 == digest,
                    )
                )
            ).first()
            if earlier is not None:
                count = await session.scalar(
                    select(func.count()).where(Passage.document_id == earlier.id)
                )
                return Added(count or 0, duplicate_of=earlier.filename)
        passages = await asyncio.to_thread(self._read, kind, document.data)
        if not passages:
            raise UnreadableDocument("document.empty")
        try:
            await self._store(document, digest, passages)
        except IntegrityError:  # the same file, stored by a concurrent share just now
            return Added(len(passages), duplicate_of=document.filename)
        return Added(len(passages))

    async def _store(
        self, document: NewDocument, digest: str, passages: list[tuple[str, int, str | None]]
    ) -> None:
        async with self._session() as session, session.begin():
            row = Document(
                conversation_id=document.conversation_id,
                author_id=document.author_id,
                author_name=document.author_name,
                filename=document.filename,
                content_sha256=digest,
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
