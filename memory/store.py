"""Conversation storage: messages are appended, never rewritten by trimming."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    Row,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.analysis import terms_off_loop
from memory.bounded import Bounded
from memory.bulk_index import COLUMNS as COLUMNS_WRITTEN
from memory.db import Read, Write, linked
from memory.keys import ConversationKey
from memory.kinds import SHARED_KINDS, ChannelKind
from memory.tables import Conversation, Message, Summary
from memory.window import AFTER_ALL as AFTER_ALL
from memory.window import COLUMNS, TOKENS_GUESS, WindowRead, read_window
from memory.window import StoredMessage as StoredMessage

# What a message's conversation lookup reads (with its summary).
_CONVERSATION = (
    Conversation.id,
    Conversation.persona,
    Conversation.reset_after,
    Conversation.kind,
)
_CONVERSATION_AT = Read(
    select(*_CONVERSATION, Summary.content, Summary.covers_until)
    .outerjoin(Summary)
    .where(
        (Conversation.platform == bindparam("platform"))
        & (Conversation.workspace == bindparam("workspace"))
        & (Conversation.channel == bindparam("channel"))
        & (Conversation.thread == bindparam("thread"))
    )
)
# The new id is the driver's: no RETURNING row to fetch (a thread hop through aiosqlite), and
# PostgreSQL's dialect adds its own RETURNING.
_INSERT = insert(Message)
# A message stored alone (no steps in its transaction): two trips to SQLite's driver.
_ADD = Write(insert(Message).returning(Message.id), (*COLUMNS_WRITTEN, "platform_message_id"))
# Channels whose `/listen` setting is remembered, and for how many seconds: a switch made by
# another process sharing the database takes effect here within that time.
_CHANNELS_KEPT = 10_000
_LISTENING_TRUSTED = 10.0
# Conversations whose message size (tokens per message) is remembered to size window reads.
_SIZES_KEPT = 10_000


@dataclass(frozen=True)
class SummaryState:
    content: str
    covers_until: int  # id of the newest message the summary covers


@dataclass(frozen=True)
class ConversationState:
    id: int
    persona: str | None
    reset_after: int
    # The rolling summary as read with the conversation (one statement for both); only
    # meaningful when `summary_read` (see memory/summary.py).
    summary: SummaryState | None = None
    summary_read: bool = False


@dataclass(frozen=True)
class NewMessage:
    role: str
    author_id: str
    author_name: str
    content: str
    tokens: int
    platform_message_id: str | None = None


@dataclass(frozen=True)
class Usage:
    messages: int
    tokens: int


def conversation_at(key: ConversationKey) -> ColumnElement[bool]:
    """The WHERE clause selecting the conversation at `key`."""
    return (
        (Conversation.platform == key.platform)
        & (Conversation.workspace == key.workspace)
        & (Conversation.channel == key.channel)
        & (Conversation.thread == key.thread)
    )


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        # Asked for every un-triggered channel message: per channel, whether it listens and
        # until when that is trusted (another process sharing the database may switch it).
        self._listening: Bounded[ConversationKey, tuple[bool, float]] = Bounded(_CHANNELS_KEPT)
        # Per conversation, the tokens per message its last window read found (sizes the next).
        self._sizes: Bounded[int, float] = Bounded(_SIZES_KEPT)

    async def latest_platform_message_id(self, conversation_id: int) -> str | None:
        """The platform id of the newest stored message that has one (adapters catch up from
        there)."""
        async with self._session() as session:
            return await session.scalar(
                select(Message.platform_message_id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.platform_message_id.is_not(None),
                )
                .order_by(Message.id.desc())
                .limit(1)
            )

    async def platform_message(self, conversation_id: int, platform_id: str) -> int | None:
        """The id of the message stored with the platform's id `platform_id`, if any."""
        async with self._session() as session:
            return await session.scalar(
                select(Message.id).where(
                    Message.conversation_id == conversation_id,
                    Message.platform_message_id == platform_id,
                )
            )

    async def conversation(
        self, key: ConversationKey, kind: ChannelKind = ChannelKind.UNKNOWN
    ) -> ConversationState:
        """The conversation at `key`, created on first use; `kind` is stored when known (a
        channel may turn private)."""
        at = {
            "platform": key.platform,
            "workspace": key.workspace,
            "channel": key.channel,
            "thread": key.thread,
        }
        async with linked(self.engine) as connection:
            rows = await _CONVERSATION_AT.rows(connection, at)
        if not rows:
            await self._create(key, kind)
            async with linked(self.engine) as connection:
                rows = await _CONVERSATION_AT.rows(connection, at)
        id_, persona, reset_after, stored_kind, content, covers_until = rows[0]
        if kind is not ChannelKind.UNKNOWN and stored_kind != kind:
            async with self.engine.begin() as connection:
                await connection.execute(
                    update(Conversation).where(Conversation.id == id_).values(kind=kind)
                )
        summary = None if content is None else SummaryState(content, covers_until)
        return ConversationState(id_, persona, reset_after, summary, summary_read=True)

    async def _create(self, key: ConversationKey, kind: ChannelKind) -> None:
        async with self._session() as session:
            session.add(
                Conversation(
                    platform=key.platform,
                    workspace=key.workspace,
                    channel=key.channel,
                    thread=key.thread,
                    kind=kind,
                    reset_after=0,
                )
            )
            try:
                await session.commit()
            except IntegrityError:  # another task created it first
                await session.rollback()

    async def exists(self, key: ConversationKey) -> bool:
        """Whether a conversation was ever started at `key` (without creating it)."""
        async with self._session() as session:
            found = await session.scalar(select(Conversation.id).where(conversation_at(key)))
            return found is not None

    async def add(
        self, conversation_id: int, message: NewMessage, then: Sequence[Executable] = ()
    ) -> int:
        """Append a message, and run `then` in the same transaction (e.g. ending the inbound
        item it answers). Re-deliveries are turned away before, by the inbound queue."""
        [terms] = await terms_off_loop([message.content])
        values = {
            "conversation_id": conversation_id,
            "role": message.role,
            "author_id": message.author_id,
            "author_name": message.author_name,
            "content": message.content,
            "tokens": message.tokens,
            "platform_message_id": message.platform_message_id,
            "terms": terms,
        }
        if not then:
            [(stored,)] = await _ADD.run(self.engine, values)
            return int(stored)
        async with self.engine.begin() as connection:
            result = await connection.execute(_INSERT, values)
            (stored,) = cast("Row[int]", result.inserted_primary_key)  # one row: set
            for step in then:
                await connection.execute(step)
            return stored

    async def window(
        self, conversation: ConversationState, before_id: int, budget: int, per_message: int
    ) -> list[StoredMessage]:
        """The newest messages before `before_id` whose tokens fit `budget`, oldest first."""
        return (await self.window_read(conversation, before_id, budget, per_message)).messages()

    async def window_read(
        self,
        conversation: ConversationState,
        before_id: int,
        budget: int,
        per_message: int,
        floor: int = 0,
    ) -> WindowRead:
        """`window`, kept above `floor`, with the earlier messages its read returned (the
        summary's next batch is usually among them: no second read)."""
        async with linked(self.engine) as connection:
            read = await read_window(
                connection,
                conversation.id,
                conversation.reset_after,
                before_id,
                budget,
                per_message,
                floor,
                self._sizes.get(conversation.id) or TOKENS_GUESS,
            )
        self._sizes.put(conversation.id, read.size)
        return read

    async def usage(self, conversation: ConversationState) -> Usage:
        """How much is stored since the last reset."""
        async with self._session() as session:
            count, tokens = (
                await session.execute(
                    select(
                        func.count(Message.id), func.coalesce(func.sum(Message.tokens), 0)
                    ).where(
                        Message.conversation_id == conversation.id,
                        Message.id > conversation.reset_after,
                    )
                )
            ).one()
        return Usage(int(count), int(tokens))

    async def set_persona(self, conversation_id: int, persona: str | None) -> None:
        async with self._session() as session:
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(persona=persona)
            )
            await session.commit()

    async def listening(self, key: ConversationKey) -> bool:
        """Whether `/listen` is on in `key`'s channel (its top level; `key.thread` is ignored)."""
        channel = replace(key, thread="")
        known = self._listening.get(channel)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        async with self._session() as session:
            on = bool(
                await session.scalar(select(Conversation.listening).where(conversation_at(channel)))
            )
        self._listening.put(channel, (on, time.monotonic() + _LISTENING_TRUSTED))
        return on

    async def set_listening(self, key: ConversationKey, on: bool) -> None:
        """Answer every message in `key`'s channel, or only the usual triggers again."""
        channel = replace(key, thread="")
        conversation = await self.conversation(channel)
        async with self._session() as session:
            await session.execute(
                update(Conversation).where(Conversation.id == conversation.id).values(listening=on)
            )
            await session.commit()
        self._listening.put(channel, (on, time.monotonic() + _LISTENING_TRUSTED))

    async def reset(self, conversation_id: int) -> None:
        """Start afresh: later windows ignore everything stored so far (it stays on disk)."""
        async with self._session() as session:
            newest = (
                select(func.coalesce(func.max(Message.id), 0))
                .where(Message.conversation_id == conversation_id)
                .scalar_subquery()
            )
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(reset_after=newest)
            )
            await session.commit()

    async def workspace_conversations(self, conversation_id: int) -> list[int]:
        """The other public conversations of the same platform workspace (for workspace-wide
        recall): never a DM, a group DM, a private channel or one of unknown kind."""
        this = (
            select(Conversation.platform, Conversation.workspace)
            .where(Conversation.id == conversation_id)
            .subquery()
        )
        async with self._session() as session:
            rows = await session.scalars(
                select(Conversation.id)
                .join(
                    this,
                    (Conversation.platform == this.c.platform)
                    & (Conversation.workspace == this.c.workspace),
                )
                .where(Conversation.id != conversation_id, Conversation.kind.in_(SHARED_KINDS))
            )
            return list(rows)

    async def messages(self, conversation_id: int) -> Sequence[StoredMessage]:
        """Every stored message of a conversation, oldest first (for export and tests)."""
        async with self._session() as session:
            rows = await session.execute(
                select(*COLUMNS)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id)
            )
            return [StoredMessage._make(row) for row in rows]
