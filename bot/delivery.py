"""Delivering a reply on a platform so that neither a shutdown nor a crash leaves it hanging.

The shutdown gate counts the whole delivery, final edit included (not just the model's stream),
so SIGTERM keeps the connections open until it is shown. A surface that can name the messages it
posted (`Mendable`) has them stored as they are posted (`memory.inflight`) and forgotten once the
reply is delivered: what a crash leaves behind is edited at the next start (`mending`) into a
notice, or into the finished reply when the crash came during its last edit — the reply's text
and the end of its inbound item are written together, before that edit, so a restart neither
answers the message again nor hides the answer.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import Executable

from bot.lifecycle import ReplyGate
from bot.messages import Final, Inbound, ReplyEvent
from bot.splitting import split_message
from bot.streaming import Surface, deliver
from bot.texts import say
from memory.inflight import LeftOver, RepliesInFlight


@runtime_checkable
class Mendable(Protocol):
    """A surface whose messages can be edited later by their platform ids."""

    place: str  # where its messages are, as the adapter finds them again (e.g. a channel id)

    def posted_ids(self) -> list[str]:
        """The platform id of every message the reply shows now, in order."""


class _Recorded:
    """A surface whose posted messages are stored as they appear."""

    def __init__(self, surface: Surface, in_flight: RepliesInFlight, platform: str) -> None:
        self.surface = surface
        self.limit = surface.limit
        self.in_flight = in_flight
        self.platform = platform
        self.row: int | None = None
        self._known: list[str] = []

    async def send(self, text: str) -> None:
        if self.row is None:
            # Stored before the first post: a crash right after it still leaves a row, whose
            # adapter finds the unrecorded placeholder by its place and time (`LeftOver`).
            assert isinstance(self.surface, Mendable)
            self.row = await self.in_flight.start(self.platform, self.surface.place, [])
        await self.surface.send(text)
        await self._record()

    async def edit(self, index: int, text: str) -> None:
        await self.surface.edit(index, text)
        await self._record()  # a platform may post more parts to show a longer text

    async def delete(self, index: int) -> None:
        await self.surface.delete(index)
        await self._record()

    async def _record(self) -> None:
        assert isinstance(self.surface, Mendable)
        ids = self.surface.posted_ids()
        if ids == self._known:
            return
        if self.row is not None:
            await self.in_flight.posted(self.row, ids)
        self._known = ids


def mending(left: LeftOver, limit: int) -> list[str]:
    """What each message a crash left should say, in order ("": delete it): the finished reply
    when it was ready, else a notice in the first message."""
    if not left.posted:
        return []
    if left.final is None:
        return [say("shutdown.cut")] + [""] * (len(left.posted) - 1)
    parts = split_message(left.final, limit) or [""]
    posted = len(left.posted)
    if len(parts) > posted:  # it was to get more messages than it had posted: the rest is cut
        parts = [*parts[: posted - 1], parts[posted - 1][: limit - 40].rstrip() + say("reply.cut")]
    return parts + [""] * (posted - len(parts))


Finishing = Callable[[], Executable | None]  # the statement ending this task's inbound item


@dataclass
class _Showing:
    """The reply this task delivers: its row in flight, and whether its final text is kept."""

    recorded: _Recorded | None
    kept: bool = False


_showing: contextvars.ContextVar[_Showing | None] = contextvars.ContextVar(
    "parley_reply_showing", default=None
)


class Delivery:
    def __init__(
        self, gate: ReplyGate, in_flight: RepliesInFlight, interval: float, finishing: Finishing
    ) -> None:
        self.gate = gate
        self.in_flight = in_flight
        self.interval = interval
        self.finishing = finishing

    async def deliver(
        self,
        replies: AsyncIterator[ReplyEvent],
        message: Inbound,
        surface: Surface,
        placeholder: str | None,
    ) -> Final | None:
        """`bot.streaming.deliver`, counted by the gate, its messages stored while in flight."""
        recorded = (
            _Recorded(surface, self.in_flight, message.key.platform)
            if isinstance(surface, Mendable)
            else None
        )
        showing = _Showing(recorded)
        token = _showing.set(showing)
        try:
            with self.gate.track():
                events = self._ended(replies, showing)
                if recorded is None:
                    return await deliver(events, surface, self.interval, placeholder)
                try:
                    final = await deliver(events, recorded, self.interval, placeholder)
                except asyncio.CancelledError:  # cut off by the shutdown, and told so
                    await self._forget(recorded)
                    raise
                # A platform error leaves the row: the next start mends the message.
                await self._forget(recorded)
                return final
        finally:
            _showing.reset(token)

    def keeping(self, text: str) -> Executable | None:
        """The statement keeping `text` as what the reply this task delivers will show, to run
        in the transaction that stores the reply (None: nothing in flight to keep it on)."""
        showing = _showing.get()
        if showing is None or showing.recorded is None or showing.recorded.row is None:
            return None
        showing.kept = True
        return self.in_flight.keeping(showing.recorded.row, text)

    async def _ended(
        self, replies: AsyncIterator[ReplyEvent], showing: _Showing
    ) -> AsyncIterator[ReplyEvent]:
        """`replies`, with the Final's text kept and the inbound item ended before it is shown
        (a stored reply did both already; a failure told, a command's answer do it here)."""
        async for event in replies:
            if isinstance(event, Final):
                recorded = showing.recorded
                row = None if showing.kept or recorded is None else recorded.row
                await self.in_flight.finished(row, event.text, self.finishing())
            yield event

    async def _forget(self, recorded: _Recorded) -> None:
        if recorded.row is not None:
            await self.in_flight.forget(recorded.row)

    async def left_over(self, platform: str) -> list[LeftOver]:
        """Replies on `platform` a crash cut off (call at start, before serving)."""
        return await self.in_flight.left_over(platform)

    async def mended(self, left: LeftOver) -> None:
        """The adapter has edited `left` into a notice."""
        await self.in_flight.forget(left.id)
