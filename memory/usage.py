"""Storage of model usage (tokens per person, conversation, model and day) and of the
admissions that make up per-minute limits.

Both live in the database so that every process sharing it sees the same figures: a limit
holds across processes on PostgreSQL (an advisory lock serializes one person's admissions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from sqlalchemy import RowMapping, Select, case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from memory.db import Write
from memory.keys import ConversationKey
from memory.tables import Conversation, Message, RateEvent, UsageDay
from memory.upsert import upsert

# How far back the per-minute limit looks.
MINUTE = 60.0
Grouping = Literal["user", "conversation", "model"]


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class UsageRecord:
    """One model call: who it was for, where, which model, what it cost in tokens."""

    platform: str
    user_id: str
    conversation_id: int
    model: str
    kind: str
    prompt_tokens: int
    reply_tokens: int
    estimated: bool  # counted by Parley: the endpoint reported no usage


@dataclass(frozen=True)
class UsageFilter:
    since: date  # first UTC day included
    platform: str | None = None
    user_id: str | None = None
    # A channel: (platform, workspace, channel); its threads are included.
    channel: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class UsageRow:
    """Usage summed for one group key and one model (costs are priced per model)."""

    key: str
    model: str
    messages: int  # messages answered (first call of each reply)
    calls: int
    prompt_tokens: int
    reply_tokens: int
    estimated_calls: int
    name: str = ""  # by user: the person's newest display name, if they wrote anything


class UsageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"
        # SQLite serves one process and writes one at a time anyway: an in-process lock makes
        # count-then-insert atomic there. PostgreSQL takes a per-person advisory lock instead.
        self._admitting: AbstractAsyncContextManager[object] = (
            nullcontext() if self._postgres else asyncio.Lock()
        )
        table = UsageDay.__table__.c
        keys = ["day", "platform", "user_id", "conversation_id", "model", "kind"]
        sums = ["calls", "prompt_tokens", "reply_tokens", "estimated_calls"]
        self._upsert = Write(
            upsert(
                engine,
                UsageDay,
                keys,
                lambda proposed: {name: table[name] + proposed[name] for name in sums},
            ),
            keys + sums,
        )

    async def record(self, usage: UsageRecord, day: date | None = None) -> None:
        """Add one call to its day's row (created on the first call)."""
        values = {
            "day": day or utc_today(),
            "platform": usage.platform,
            "user_id": usage.user_id,
            "conversation_id": usage.conversation_id,
            "model": usage.model[:128],
            "kind": usage.kind,
            "calls": 1,
            "prompt_tokens": usage.prompt_tokens,
            "reply_tokens": usage.reply_tokens,
            "estimated_calls": int(usage.estimated),
        }
        await self._upsert.run(self.engine, values)

    async def tokens_on(self, platform: str, user_id: str, day: date) -> int:
        """Prompt and reply tokens a person used on `day` (UTC)."""
        query = select(
            func.coalesce(func.sum(UsageDay.prompt_tokens + UsageDay.reply_tokens), 0)
        ).where(UsageDay.platform == platform, UsageDay.user_id == user_id, UsageDay.day == day)
        async with self._session() as session:
            return int((await session.execute(query)).scalar_one())

    async def admit(self, platform: str, user_id: str, per_minute: int) -> float | None:
        """Count a message against a person's per-minute limit. None: admitted (and counted);
        otherwise the Unix time from which they can write again."""
        async with self._admitting, self._session() as session, session.begin():
            if self._postgres:
                # One admission per person at a time, across every process on this database.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"parley-admit:{platform}:{user_id}"},
                )
            return await self._admit(session, platform, user_id, per_minute)

    async def _admit(
        self, session: AsyncSession, platform: str, user_id: str, per_minute: int
    ) -> float | None:
        now = time.time()
        mine = (RateEvent.platform == platform, RateEvent.user_id == user_id)
        await session.execute(delete(RateEvent).where(*mine, RateEvent.at <= now - MINUTE))
        recent = (
            await session.execute(
                select(RateEvent.at).where(*mine).order_by(RateEvent.at.desc()).limit(per_minute)
            )
        ).scalars()
        times = list(recent)
        if len(times) >= per_minute:
            return min(times) + MINUTE
        session.add(RateEvent(platform=platform, user_id=user_id, at=now))
        return None

    async def report(self, by: Grouping, where: UsageFilter) -> list[UsageRow]:
        """Usage grouped by person, conversation or model (and by model within each)."""
        async with self._session() as session:
            rows = (await session.execute(_report_query(by, where))).mappings().all()
            names = await _names(session, rows) if by == "user" else {}
        return [
            UsageRow(
                key=_key(by, row),
                model=row["model"],
                messages=int(row["messages"]),
                calls=int(row["calls"]),
                prompt_tokens=int(row["prompt_tokens"]),
                reply_tokens=int(row["reply_tokens"]),
                estimated_calls=int(row["estimated_calls"]),
                name=names.get((row["platform"], row["user_id"]), "") if names else "",
            )
            for row in rows
        ]


async def _names(session: AsyncSession, rows: Sequence[RowMapping]) -> dict[tuple[str, str], str]:
    """The newest name each person wrote under, from their stored messages."""
    ids = {row["user_id"] for row in rows if row["user_id"]}
    if not ids:
        return {}
    newest = (
        select(func.max(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.author_id.in_(ids), Message.role == "user")
        .group_by(Conversation.platform, Message.author_id)
    )
    found = await session.execute(
        select(Conversation.platform, Message.author_id, Message.author_name)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id.in_(newest))
    )
    return {(platform, author): name for platform, author, name in found}


def _key(by: Grouping, row: RowMapping) -> str:
    if by == "model":
        return str(row["model"])
    if by == "user":
        # Calls made for nobody in particular (none today) share one line.
        return f"{row['platform']}:{row['user_id']}" if row["user_id"] else "-"
    if row["channel"] is None:  # the conversation is gone (or there was none)
        return f"#{row['conversation_id']}"
    return str(ConversationKey(row["platform"], row["workspace"], row["channel"], row["thread"]))


def _report_query(by: Grouping, where: UsageFilter) -> Select[tuple[object, ...]]:
    groups: Sequence[object]
    if by == "user":
        groups = (UsageDay.platform, UsageDay.user_id)
    elif by == "conversation":
        groups = (
            UsageDay.conversation_id,
            Conversation.platform,
            Conversation.workspace,
            Conversation.channel,
            Conversation.thread,
        )
    else:
        groups = ()
    query = (
        select(
            *groups,
            UsageDay.model,
            func.sum(case((UsageDay.kind == "reply", UsageDay.calls), else_=0)).label("messages"),
            func.sum(UsageDay.calls).label("calls"),
            func.sum(UsageDay.prompt_tokens).label("prompt_tokens"),
            func.sum(UsageDay.reply_tokens).label("reply_tokens"),
            func.sum(UsageDay.estimated_calls).label("estimated_calls"),
        )
        .outerjoin(Conversation, Conversation.id == UsageDay.conversation_id)
        .where(UsageDay.day >= where.since)
        .group_by(*groups, UsageDay.model)
    )
    if where.platform is not None:
        query = query.where(UsageDay.platform == where.platform)
    if where.user_id is not None:
        query = query.where(UsageDay.user_id == where.user_id)
    if where.channel is not None:
        platform, workspace, channel = where.channel
        query = query.where(
            Conversation.platform == platform,
            Conversation.workspace == workspace,
            Conversation.channel == channel,
        )
    return query
