"""Graceful shutdown: stop taking messages, let replies in progress finish, then stop serving.

`ReplyGate` is the flag the core checks plus a count of replies being written; `serve` runs the
adapters until SIGTERM/SIGINT (or until they end) and shuts down in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)

# How long cancelled replies get to show that they were cut off.
_NOTICE_SECONDS = 5.0


# The gate whose `track` the current task (or the task that started it) is inside.
_tracked: contextvars.ContextVar[ReplyGate | None] = contextvars.ContextVar(
    "parley_reply_gate", default=None
)


class ReplyGate:
    def __init__(self) -> None:
        self.closing = False
        self.begun = 0  # replies tracked so far
        self._writers: list[asyncio.Task[Any]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count the current task as writing a reply until the block ends. Inside a tracked
        delivery (also in the tasks it starts, which share its context) the reply it shows is
        already counted: cancelling the delivery ends it."""
        if _tracked.get() is self:
            yield
            return
        task = asyncio.current_task()
        assert task is not None, "replies are written inside a task"
        self._writers.append(task)
        self.begun += 1
        self._idle.clear()
        # Not reset by token: an async generator may be closed from another context.
        outer = _tracked.get()
        _tracked.set(self)
        try:
            yield
        finally:
            _tracked.set(outer)
            self._writers.remove(task)
            if not self._writers:
                self._idle.set()

    async def idle(self) -> None:
        """Wait until no reply is being written or delivered."""
        await self._idle.wait()

    def idle_now(self) -> bool:
        """No reply is being written or delivered."""
        return self._idle.is_set()

    async def close(self, grace: float) -> int:
        """Refuse new messages, wait up to `grace` s for replies in progress (delivery
        included), then cancel the rest. Returns how many were cancelled."""
        self.closing = True
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
            return 0
        except TimeoutError:
            stragglers = [task for task in set(self._writers) if task is not asyncio.current_task()]
            for task in stragglers:
                task.cancel()
            if stragglers:  # they edit a notice into their message: connections are still open
                await asyncio.wait(stragglers, timeout=_NOTICE_SECONDS)
            log.warning("cancelled %d replies still running after %.1f s", len(stragglers), grace)
            return len(stragglers)


async def serve(
    jobs: list[Coroutine[Any, Any, None]],
    gate: ReplyGate,
    grace: float,
    interrupt: Callable[[], bool] | None = None,
) -> str | None:
    """Run `jobs` (adapters) until one ends or SIGTERM/SIGINT arrives, then shut down
    gracefully. Returns the name of the signal that stopped it, if any. `interrupt` may take a
    SIGINT for itself (the terminal chat stops a reply on Ctrl-C) by returning True."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if sig is signal.SIGINT and interrupt is not None and interrupt():
            return
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    tasks = [asyncio.create_task(job) for job in jobs]
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        if received:
            log.info(
                "received %s: finishing replies in progress (up to %.0f s)", received[0], grace
            )
        await gate.close(grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for task in [*tasks, stopper]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return received[0] if received else None
