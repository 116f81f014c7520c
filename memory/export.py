"""Moving history out: JSON Lines (what `parley memory import` reads) and Markdown.

One JSON object per line: {"conversation": "terminal/local/default", "author": "Ann",
"author_id": "ann", "role": "user", "content": "…", "time": "2026-11-22T10:00:00+00:00"}.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from memory.keys import ConversationKey
from memory.store import conversation_at
from memory.tables import Conversation, Message

Format = Literal["jsonl", "markdown"]
_EXPORT_BATCH = 1000


def _key(row: Conversation) -> ConversationKey:
    return ConversationKey(row.platform, row.workspace, row.channel, row.thread)


async def export(
    engine: AsyncEngine, key: ConversationKey | None, fmt: Format
) -> AsyncIterator[str]:
    """The text of the export in pieces: one conversation (`key`) or all (None)."""
    async with AsyncSession(engine) as session:
        query = select(Conversation).order_by(Conversation.id)
        if key is not None:
            query = query.where(conversation_at(key))
        for conversation in list(await session.scalars(query)):
            name = str(_key(conversation))
            if fmt == "markdown":
                yield f"# {name}\n\n"
            rows = await session.stream_scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.id)
                .execution_options(yield_per=_EXPORT_BATCH)
            )
            async for batch in rows.partitions():
                yield "".join(_jsonl(name, m) if fmt == "jsonl" else _markdown(m) for m in batch)


def _time(message: Message) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return message.created_at.replace(tzinfo=message.created_at.tzinfo or UTC)


def _jsonl(conversation: str, message: Message) -> str:
    return (
        json.dumps(
            {
                "conversation": conversation,
                "author": message.author_name,
                "author_id": message.author_id,
                "role": message.role,
                "content": message.content,
                "time": _time(message).isoformat(),
            },
            ensure_ascii=False,
        )
        + "\n"
    )


def _markdown(message: Message) -> str:
    return (
        f"**{message.author_name}** ({_time(message):%Y-%m-%d %H:%M} UTC)\n\n{message.content}\n\n"
    )
