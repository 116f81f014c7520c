"""Shared documents (text, Markdown, PDF): read, cut into passages, stored for recall."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.analysis import index_terms
from memory.extract import Cut, Extracted, ExtractionFailed, Limits, extract_pdf
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


def _text_within(data: bytes, max_chars: int) -> Extracted:
    text = decode_text(data)
    return Extracted(text[:max_chars], "chars") if len(text) > max_chars else Extracted(text)


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
    """A document's passages (text, tokens, index terms), the limit that cut it, if any, and
    the hash of its bytes (the same file shared again is stored once)."""

    passages: list[tuple[str, int, str | None]]
    digest: str
    cut: Cut | Literal["passages"] | None = None


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
                extracted = await asyncio.to_thread(_text_within, data, limits.max_chars)
        except ExtractionFailed as exc:
            key = "document.too_slow" if exc.timed_out else "document.bad_pdf"
            raise UnreadableDocument(key, error=exc.detail) from exc
        read = await asyncio.to_thread(self._passages, extracted, hashlib.sha256(data).hexdigest())
        if not read.passages:
            raise UnreadableDocument("document.empty")
        return read

    def _passages(self, extracted: Extracted, digest: str) -> ReadDocument:
        passages = split_passages(extracted.text, self.counter)
        cut: Cut | Literal["passages"] | None = extracted.cut
        if len(passages) > self.limits.max_passages:
            passages, cut = passages[: self.limits.max_passages], "passages"
        terms = [(p, self.counter.count(p), index_terms(p)) for p in passages]
        return ReadDocument(terms, digest, cut)

    async def store(self, document: NewDocument, read: ReadDocument) -> Added:
        """Store a read document's passages (all or none), unless the same bytes are already
        stored in the conversation."""
        earlier = await self._stored_as(document.conversation_id, read.digest)
        if earlier is not None:
            return earlier
        try:
            await self._insert(document, read)
        except IntegrityError:  # the same file, stored by a concurrent share just now
            return Added(len(read.passages), duplicate_of=document.filename)
        return Added(len(read.passages))

    async def _stored_as(self, conversation_id: int, digest: str) -> Added | None:
        async with self._session() as session:
            earlier = (
                await session.execute(
                    select(Document.filename, Document.id).where(
                        Document.conversation_id == conversation_id,
                        Document.content_sha256 == digest,
                    )
                )
            ).first()
            if earlier is None:
                return None
            count = await session.scalar(
                select(func.count()).where(Passage.document_id == earlier.id)
            )
        return Added(count or 0, duplicate_of=earlier.filename)

    async def _insert(self, document: NewDocument, read: ReadDocument) -> None:
        async with self._session() as session, session.begin():
            row = Document(
                conversation_id=document.conversation_id,
                author_id=document.author_id,
                author_name=document.author_name,
                filename=document.filename,
                content_sha256=read.digest,
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
