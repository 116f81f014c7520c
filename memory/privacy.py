"""Deleting what people ask us to forget, and what is older than the retention period.

Index entries go with the rows: SQLite's FTS triggers and PostgreSQL's generated columns follow
every delete; document passages cascade from their document, and embedding vectors from their
message or passage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Delete, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from memory.inbound import FINISHED
from memory.kinds import ChannelKind
from memory.tables import Conversation, Document, InboundItem, Message, Summary, utcnow

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 3600.0  # seconds between retention runs
# Platforms re-deliver events within minutes (retries, reconnects); a week is ample.
EVENT_MEMORY = timedelta(days=7)
# Bulk deletes: nothing is loaded into the session, so there is nothing to synchronize.
_BULK = {"synchronize_session": False}


@dataclass(frozen=True)
class Forgotten:
    messages: int
    documents: int


async def forget_author(engine: AsyncEngine, platform: str, author_id: str) -> Forgotten:
    """Delete everything `author_id` wrote or shared anywhere on `platform`, in one transaction:
    their messages and documents, the bot's replies to them (with the search records stored
    before each reply), and, where nobody else spoke (a DM), the whole conversation's history.

    Summaries of the conversations they were in are deleted (they may quote them); the next
    reply there writes a new one from what remains. Embedding vectors and index entries go
    with their rows.
    """
    on_platform = select(Conversation.id).where(Conversation.platform == platform)
    theirs = (
        (Message.author_id == author_id)
        & (Message.role == "user")
        & Message.conversation_id.in_(on_platform)
    )
    their_documents = (Document.author_id == author_id) & Document.conversation_id.in_(on_platform)
    async with AsyncSession(engine) as session, session.begin():
        touched = set(
            await session.scalars(select(Message.conversation_id).where(theirs).distinct())
        ) | set(await session.scalars(select(Document.conversation_id).where(their_documents)))
        alone = await _only_speaker(session, touched, author_id)
        await _delete(session, delete(Summary).where(Summary.conversation_id.in_(touched)))
        messages = await _delete(
            session, delete(Message).where(Message.conversation_id.in_(alone))
        ) + await _delete(session, delete(Message).where(_answers(author_id, touched)))
        messages += await _delete(session, delete(Message).where(theirs))
        documents = await _delete(
            session,
            delete(Document).where(their_documents | Document.conversation_id.in_(alone)),
        )
    return Forgotten(messages, documents)


async def _only_speaker(session: AsyncSession, conversations: set[int], author_id: str) -> set[int]:
    """Of `conversations`, their DMs with the bot: by the kind the platform reported, or, for
    conversations of unknown kind, where no one else ever spoke."""
    rows = await session.execute(
        select(Conversation.id, Conversation.kind).where(Conversation.id.in_(conversations))
    )
    kinds = {row.id: row.kind for row in rows}
    others = select(Message.conversation_id).where(
        Message.conversation_id.in_(conversations),
        Message.role == "user",
        Message.author_id != author_id,
    )
    shared = set(await session.scalars(others.distinct()))
    return {
        conversation
        for conversation, kind in kinds.items()
        if kind == ChannelKind.DM or (kind == ChannelKind.UNKNOWN and conversation not in shared)
    }


def _answers(author_id: str, conversations: set[int]) -> ColumnElement[bool]:
    """Bot rows (replies, search records) whose nearest earlier person's message is theirs:
    a reply is stored right after the message it answers, under the conversation's lock."""
    asked = aliased(Message)
    previous_speaker = (
        select(asked.author_id)
        .where(
            asked.conversation_id == Message.conversation_id,
            asked.role == "user",
            asked.id < Message.id,
        )
        .order_by(asked.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        Message.conversation_id.in_(conversations)
        & (Message.role != "user")
        & (previous_speaker == author_id)
    )


async def _delete(session: AsyncSession, statement: Delete) -> int:
    result = await session.execute(statement.execution_options(**_BULK))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def prune(engine: AsyncEngine, days: int) -> int:
    """Delete messages, documents and summaries older than `days`; returns messages deleted."""
    cutoff = utcnow() - timedelta(days=days)
    async with AsyncSession(engine) as session, session.begin():
        result = await session.execute(
            delete(Message).where(Message.created_at < cutoff).execution_options(**_BULK)
        )
        await session.execute(
            delete(Document).where(Document.created_at < cutoff).execution_options(**_BULK)
        )
        await session.execute(
            delete(Summary).where(Summary.updated_at < cutoff).execution_options(**_BULK)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def prune_events(engine: AsyncEngine) -> int:
    """Forget finished inbound items old enough that no platform will re-deliver them."""
    async with AsyncSession(engine) as session, session.begin():
        result = await session.execute(
            delete(InboundItem)
            .where(
                InboundItem.state.in_(FINISHED),
                InboundItem.received_at < time.time() - EVENT_MEMORY.total_seconds(),
            )
            .execution_options(**_BULK)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def keep_pruning(
    engine: AsyncEngine,
    days: int | None,
    stop: asyncio.Event,
    interval: float = RETENTION_INTERVAL,
) -> None:
    """Prune now and then every `interval` seconds, until `stop` is set: old event ids always,
    messages older than `days` when a retention period is set. Stopping waits for a run in
    progress (cancelling one mid-statement leaves the connection to be reset noisily)."""
    while not stop.is_set():
        try:
            await prune_events(engine)
            deleted = await prune(engine, days) if days is not None else 0
            if deleted:
                log.info("retention: deleted %d messages older than %d days", deleted, days)
        except SQLAlchemyError:
            log.exception("retention run failed; retrying in %.0f s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
