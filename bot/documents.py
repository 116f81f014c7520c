"""Shared documents as the core takes them in: read first (slow, outside the conversation's
lock), stored once the message proved new, and the person told what happened, including when
a limit cut the document short."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.messages import Attachment, Author
from bot.settings import Settings
from bot.texts import counted, explain, say
from memory.documents import Added, Documents, NewDocument, ReadDocument, UnreadableDocument
from memory.extract import Limits

log = logging.getLogger(__name__)


def document_limits(settings: Settings) -> Limits:
    return Limits(
        settings.document_max_pages,
        settings.document_max_chars,
        settings.document_max_passages,
        settings.document_timeout,
    )


@dataclass(frozen=True)
class Pending:
    """A document read but not stored yet: its passages, or why there are none."""

    filename: str
    read: ReadDocument | None
    problem: str = ""  # for the person, when `read` is None


class DocumentIntake:
    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    async def read(self, attachment: Attachment, strict: bool = False) -> Pending:
        """Read a shared file; `strict` raises UnreadableDocument instead of returning it as
        something to tell (the command line exits non-zero on it)."""
        name = attachment.filename
        try:
            read = await self.documents.read(name, attachment.data, attachment.content_type)
        except UnreadableDocument as exc:
            if strict:
                raise
            log.info("could not read a shared document: %s", exc.reason)
            reason = explain(exc)
            return Pending(name, None, say("document.unreadable", filename=name, reason=reason))
        return Pending(name, read)

    async def store(self, conversation_id: int, author: Author, pending: Pending) -> str:
        """Store a read document; what to tell the person."""
        if pending.read is None:
            return pending.problem
        name, cut = pending.filename, pending.read.cut
        added = await self.documents.store(
            NewDocument(conversation_id, author.id, author.name, name), pending.read
        )
        if added.duplicate_of is not None or cut is None:
            return _note(name, added)
        limit = getattr(self.documents.limits, f"max_{cut}")
        told = say(f"document.cut_{cut}", filename=name, limit=f"{limit:,}")
        return f"{_note(name, added)} {told}"


def _note(filename: str, added: Added) -> str:
    passages = counted("passage", added.passages)
    if added.duplicate_of is not None:
        return say(
            "document.duplicate", filename=filename, earlier=added.duplicate_of, passages=passages
        )
    return say("document.added", filename=filename, passages=passages)
