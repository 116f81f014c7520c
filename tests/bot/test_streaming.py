"""`deliver`: the shared streamed-edit renderer, against a recording surface."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

from bot.messages import Delta, Final, Outcome, ReplyEvent
from bot.splitting import split_message
from bot.streaming import CURSOR, deliver


class RecordingSurface:
    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self.edits: list[tuple[float, int, str]] = []
        self.busy = False

    async def _touch(self) -> None:
        assert not self.busy, "one message edited concurrently"
        self.busy = True
        await asyncio.sleep(0.01)
        self.busy = False

    async def send(self, text: str) -> None:
        await self._touch()
        self.messages.append(text)

    async def edit(self, index: int, text: str) -> None:
        await self._touch()
        self.messages[index] = text
        self.edits.append((time.monotonic(), index, text))

    async def delete(self, index: int) -> None:
        await self._touch()
        del self.messages[index]


async def stream(*events: ReplyEvent, gap: float = 0.02) -> AsyncIterator[ReplyEvent]:
    for event in events:
        await asyncio.sleep(gap)
        yield event


async def test_edits_are_throttled_and_the_last_one_is_final() -> None:
    surface = RecordingSurface()
    words = [f"w{i}" for i in range(40)]
    deltas = [Delta(" ".join(words[: i + 1])) for i in range(40)]
    final = await deliver(stream(*deltas, Final(" ".join(words))), surface, interval=0.2)
    assert final is not None and surface.messages == [" ".join(words)]
    times = [t for t, _, _ in surface.edits]
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(times))
    assert len(surface.edits) < 10  # far fewer edits than deltas
    assert any(text.endswith(CURSOR) for _, _, text in surface.edits)


async def test_long_reply_spreads_over_messages_and_shrinks_on_error() -> None:
    surface = RecordingSurface(limit=100)
    long = " ".join(["word"] * 100)
    await deliver(stream(Delta(long), Final(long)), surface, interval=0.01)
    assert surface.messages == split_message(long, 100) and len(surface.messages) > 4

    surface = RecordingSurface(limit=100)
    error = Final("The model took too long to answer.", Outcome.TIMEOUT)
    await deliver(stream(Delta(long), error, gap=0.05), surface, interval=0.01)
    assert surface.messages == [error.text]


async def test_placeholder_is_removed_when_there_is_no_reply() -> None:
    surface = RecordingSurface()
    assert await deliver(stream(), surface, interval=0.01, placeholder="Thinking…") is None
    assert surface.messages == []


async def test_placeholder_becomes_the_reply() -> None:
    surface = RecordingSurface()
    await deliver(stream(Final("done")), surface, interval=0.01, placeholder="Thinking…")
    assert surface.messages == ["done"]
