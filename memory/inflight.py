"""Replies in flight: which platform messages a reply has posted so far, stored as each is
posted and forgotten once the reply is delivered. What a crash leaves behind is found again at
start-up, so its placeholder or half reply can be edited into a notice instead of hanging there.

Several processes may share the database: a row is left over only once the process that wrote
it holds no live claim in the inbound queue (`memory.inbound`: claims are renewed while a reply
is delivered, and run out within a lease after a process dies).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Executable, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.db import Write
from memory.tables import InboundItem, ReplyInFlight

# Every platform reply runs these: built once, through Core connections (an ORM session's unit
# of work cost more CPU than the statement itself).
_START = Write(
    insert(ReplyInFlight).returning(ReplyInFlight.id),
    ("platform", "channel", "posted", "owner"),
)
_POSTED = (
    update(ReplyInFlight)
    .where(ReplyInFlight.id == bindparam("reply"))
    .values(posted=bindparam("ids"))
)
_FORGET = delete(ReplyInFlight).where(ReplyInFlight.id == bindparam("reply"))


@dataclass(frozen=True)
class LeftOver:
    """A reply a crash cut off: its messages, in the order they were posted."""

    id: int
    place: str  # the channel its messages are in
    posted: tuple[str, ...]  # empty if it had taken its placeholder away
    final: str | None = None  # the finished reply, if the crash came during its last edit
    # When it began (epoch seconds): with nothing posted yet recorded, a placeholder posted
    # since then may still be there, unrecorded.
    started: float = field(default=0.0, compare=False)


class RepliesInFlight:
    def __init__(
        self, engine: AsyncEngine, owner: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self.owner = owner
        self._clock = clock

    async def start(self, platform: str, place: str, message_ids: list[str]) -> int:
        """A reply has posted its first message(s)."""
        row = {
            "platform": platform,
            "channel": place,
            "posted": json.dumps(message_ids),
            "owner": self.owner,
        }
        [(started,)] = await _START.run(self._engine, row)
        return int(started)

    async def posted(self, reply: int, message_ids: list[str]) -> None:
        """Every message the reply shows now (set as each one is posted)."""
        async with self._engine.begin() as connection:
            await connection.execute(_POSTED, {"reply": reply, "ids": json.dumps(message_ids)})

    @staticmethod
    def keeping(reply: int, text: str) -> Executable:
        """The statement keeping `text` as what the reply will show once finished."""
        return update(ReplyInFlight).where(ReplyInFlight.id == reply).values(final=text)

    async def finished(self, reply: int | None, text: str, then: Executable | None) -> None:
        """The reply is ready to be shown whole as `text`; `then` (ending its inbound item) runs
        in the same transaction, so a restart neither answers it again nor hides it."""
        if reply is None and then is None:
            return
        async with self._engine.begin() as connection:
            if reply is not None:
                await connection.execute(self.keeping(reply, text))
            if then is not None:
                await connection.execute(then)

    async def forget(self, reply: int) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(_FORGET, {"reply": reply})

    async def left_over(self, platform: str) -> list[LeftOver]:
        """Replies on `platform` whose process is gone (never this process's own)."""
        alive = exists().where(
            InboundItem.owner == ReplyInFlight.owner, InboundItem.lease_until >= self._clock()
        )
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(
                    ReplyInFlight.id,
                    ReplyInFlight.channel,
                    ReplyInFlight.posted,
                    ReplyInFlight.final,
                    ReplyInFlight.started_at,
                )
                .where(
                    ReplyInFlight.platform == platform,
                    or_(ReplyInFlight.owner.is_(None), ReplyInFlight.owner != self.owner),
                    ~alive,
                )
                .order_by(ReplyInFlight.id)
            )
            return [
                LeftOver(id, channel, tuple(json.loads(posted)), final, _epoch(started))
                for id, channel, posted, final, started in rows
            ]


def _epoch(moment: datetime) -> float:
    # SQLite hands back naive datetimes (stored in UTC).
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
