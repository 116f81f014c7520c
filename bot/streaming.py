"""Show a streamed reply on a chat platform by editing messages, for every adapter alike.

The model stream is read by one task and the messages are edited by another, at most once per
`interval`: slow or rate-limited edits never stall the stream, one message is never edited
concurrently, and the last edit always shows the finished reply (or the error).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

from bot.messages import Delta, Final, ReplyEvent
from bot.splitting import split_message
from bot.texts import say

CURSOR = " ▌"


class Surface(Protocol):
    """Where a reply is shown: a platform's message(s) in one place."""

    limit: int  # longest message the platform accepts, in characters

    async def send(self, text: str) -> None:
        """Post message number len(sent so far)."""

    async def edit(self, index: int, text: str) -> None:
        """Replace the text of the index-th message posted."""

    async def delete(self, index: int) -> None:
        """Remove the index-th message posted (when a reply shrinks, e.g. into an error)."""


class _Shown:
    """What the surface currently shows, message by message."""

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        self.texts: list[str] = []

    async def show(self, text: str) -> None:
        chunks = split_message(text, self.surface.limit) or ["…"]
        for index, chunk in enumerate(chunks):
            if index >= len(self.texts):
                await self.surface.send(chunk)
                self.texts.append(chunk)
            elif self.texts[index] != chunk:
                await self.surface.edit(index, chunk)
                self.texts[index] = chunk
        while len(self.texts) > len(chunks):
            await self.surface.delete(len(self.texts) - 1)
            self.texts.pop()


async def deliver(
    events: AsyncIterator[ReplyEvent],
    surface: Surface,
    interval: float,
    placeholder: str | None = None,
) -> Final | None:
    """Render `events` on `surface`; returns the Final, or None if there was no reply.

    Cancelled (the shutdown timeout ended it), it still edits the message once: the reply so
    far with a notice that it was cut off, never a placeholder or a cursor left hanging.
    """
    shown = _Shown(surface)
    latest: list[ReplyEvent] = []
    try:
        return await _render(events, shown, interval, placeholder, latest)
    except asyncio.CancelledError:
        event = latest[0] if latest else None
        if isinstance(event, Final):  # cancelled during the final edit: finish it
            await shown.show(event.text)
        else:
            so_far = event.text + "\n\n" if event is not None else ""
            await shown.show(so_far + say("shutdown.cut"))
        raise


async def _render(
    events: AsyncIterator[ReplyEvent],
    shown: _Shown,
    interval: float,
    placeholder: str | None,
    latest: list[ReplyEvent],
) -> Final | None:
    changed = asyncio.Event()
    if placeholder:
        await shown.show(placeholder)

    async def pump() -> None:
        async for event in events:
            latest[:] = [event]
            changed.set()
        changed.set()

    reader = asyncio.create_task(pump())
    try:
        while True:
            await changed.wait()
            changed.clear()
            event = latest[0] if latest else None
            if event is None or isinstance(event, Final) or reader.done():
                break
            started = time.monotonic()
            await shown.show(event.text + CURSOR)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        await reader  # re-raises a failure of the stream itself
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    final = latest[0] if latest else None
    if isinstance(final, Final):
        await shown.show(final.text)
        return final
    if isinstance(final, Delta):  # stream ended without a Final: show what came
        await shown.show(final.text)
    else:  # nothing to say (a re-delivered message): take the placeholder away
        for index in reversed(range(len(shown.texts))):
            await shown.surface.delete(index)
    return None
