"""The garbage collector's full passes, run when no reply is being written.

A full pass walks the live state of every reply in flight with the event loop stopped: ~100 ms
at 1,000 conversations in flight (`python -m bench --only throughput`). Replies leave little
cyclic garbage and the young generations free most of it, so automatic full passes are turned
off and a task runs one once replies have stopped (with nothing in flight and what start-up
loaded frozen, a pass takes a few ms), and at the latest every `longest` seconds under load
that never stops, so cyclic garbage cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

from bot.lifecycle import ReplyGate

# Generation-2 threshold that no count reaches: automatic full passes off.
_NEVER = 2**30


@contextlib.asynccontextmanager
async def full_passes_when_idle(
    gate: ReplyGate, look: float = 1.0, longest: float = 600.0
) -> AsyncIterator[None]:
    """Freeze what is loaded (it lives as long as the process), turn automatic full passes off
    and run them when `gate` is idle (looking every `look` seconds), or `longest` seconds after
    the last one; the thresholds come back on leaving."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], _NEVER)
    stop = asyncio.Event()
    collecting = asyncio.create_task(_collect(gate, stop, look, longest))
    try:
        yield
    finally:
        stop.set()
        await collecting
        gc.set_threshold(*thresholds)


async def _collect(gate: ReplyGate, stop: asyncio.Event, look: float, longest: float) -> None:
    last = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), look)
        # Only once the middle generation has passed survivors on to the oldest.
        if gc.get_count()[2] and (gate.idle_now() or time.monotonic() - last > longest):
            gc.collect()
            last = time.monotonic()
