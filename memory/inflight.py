"""Replies in flight: which platform messages a reply has posted so far, stored as each is
posted and forgotten once the reply is delivered. What a crash leaves behind is found again at
start-up, so its placeholder or half reply can be edited into a notice instead of hanging there.

Single-process: every row left at start-up belongs to a process that is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.tables import ReplyInFlight


@dataclass(frozen=True)
class LeftOver:
    """A reply a crash cut off: its messages, in the order they were posted."""

    id: int
    place: str  # the channel its messages are in
    posted: tuple[str, ...]  # empty if it had taken its placeholder away


class RepliesInFlight:
    def __init__(self, engine: AsyncEngine) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    async def start(self, platform: str, place: str, message_ids: list[str]) -> int:
        """A reply has posted its first message(s)."""
        async with self._session() as session:
            row = ReplyInFlight(platform=platform, channel=place, posted=json.dumps(message_ids))
            session.add(row)
            await session.commit()
            return row.id

    async def posted(self, reply: int, message_ids: list[str]) -> None:
        """Every message the reply shows now (set as each one is posted)."""
        async with self._session() as session:
            await session.execute(
                update(ReplyInFlight)
                .where(ReplyInFlight.id == reply)
                .values(posted=json.dumps(message_ids))
            )
            await session.commit()

    async def forget(self, reply: int) -> None:
        async with self._session() as session:
            await session.execute(delete(ReplyInFlight).where(ReplyInFlight.id == reply))
            await session.commit()

    async def left_over(self, platform: str) -> list[LeftOver]:
        async with self._session() as session:
            rows = await session.execute(
                select(ReplyInFlight.id, ReplyInFlight.channel, ReplyInFlight.posted)
                .where(ReplyInFlight.platform == platform)
                .order_by(ReplyInFlight.id)
            )
            return [
                LeftOver(id, channel, tuple(json.loads(posted))) for id, channel, posted in rows
            ]
