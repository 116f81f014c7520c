"""Delivering a reply on a platform so that neither a shutdown nor a crash leaves it hanging.

The shutdown gate counts the whole delivery, final edit included (not just the model's stream),
so SIGTERM keeps the connections open until it is shown. A surface that can name the messages it
posted (`Mendable`) has them stored as they are posted (`memory.inflight`) and forgotten once the
reply is delivered: what a crash leaves behind is edited into a notice at the next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from bot.lifecycle import ReplyGate
from bot.messages import Final, Inbound, ReplyEvent
from bot.streaming import Surface, deliver
from memory.inflight import LeftOver, RepliesInFlight


@runtime_checkable
class Mendable(Protocol):
    """A surface whose messages can be edited later by their platform ids."""

    place: str  # where its messages are: the channel id the adapter edits them in

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
        if self.row is None:  # one write before the model is asked: the placeholder's id
            self.row = await self.in_flight.start(self.platform, self.surface.place, ids)
        else:
            await self.in_flight.posted(self.row, ids)
        self._known = ids


class Delivery:
    def __init__(self, gate: ReplyGate, in_flight: RepliesInFlight, interval: float) -> None:
        self.gate = gate
        self.in_flight = in_flight
        self.interval = interval

    async def deliver(
        self,
        replies: AsyncIterator[ReplyEvent],
        message: Inbound,
        surface: Surface,
        placeholder: str | None,
    ) -> Final | None:
        """`bot.streaming.deliver`, counted by the gate, its messages stored while in flight."""
        with self.gate.track():
            if not isinstance(surface, Mendable):
                return await deliver(replies, surface, self.interval, placeholder)
            recorded = _Recorded(surface, self.in_flight, message.key.platform)
            try:
                final = await deliver(replies, recorded, self.interval, placeholder)
            except asyncio.CancelledError:  # cut off by the shutdown, and told so
                await self._forget(recorded)
                raise
            # A platform error leaves the row: the next start edits the message into a notice.
            await self._forget(recorded)
            return final

    async def _forget(self, recorded: _Recorded) -> None:
        if recorded.row is not None:
            await self.in_flight.forget(recorded.row)

    async def left_over(self, platform: str) -> list[LeftOver]:
        """Replies on `platform` a crash cut off (call at start, before serving)."""
        return await self.in_flight.left_over(platform)

    async def mended(self, left: LeftOver) -> None:
        """The adapter has edited `left` into a notice."""
        await self.in_flight.forget(left.id)
