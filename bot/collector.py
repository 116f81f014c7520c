"""The garbage collector on a clock, its full passes when no reply is being written.

CPython starts a young collection when allocations less deallocations pass a threshold (700).
Under load the deallocations of older objects (finished replies) offset the new ones, so the
youngest generation grew to 25,000-50,000 objects between collections, each walked with the
event loop stopped: steps of 15-45 ms in the throughput bench (1,000 conversations in flight),
by collections that found no garbage (replies leave little cyclic garbage). So automatic
collection is off, and a task collects the youngest generation every `tick` seconds (what a
tick allocates), its survivors left to the full passes: throughput bench, 2,000 replies, the
collector's CPU 550 -> 270 ms. Its longest pass is still 16-33 ms when 1,000 replies start in
one loop iteration: all their first steps run before any timer.

A full pass walks the live state of every reply in flight: ~100 ms at 1,000 conversations in
flight. It runs once replies have stopped (with nothing in flight and what start-up loaded
frozen, a pass takes a few ms), and at the latest every `longest` seconds under load that never
stops, so cyclic garbage cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

from bot.lifecycle import ReplyGate

# With no reply in flight the youngest generation is collected this many times less often.
_IDLE_TICKS = 10


@contextlib.asynccontextmanager
async def collections_on_a_clock(
    gate: ReplyGate, tick: float = 0.01, look: float = 1.0, longest: float = 600.0
) -> AsyncIterator[None]:
    """Freeze what is loaded (it lives as long as the process), turn automatic collection off,
    collect the youngest generation every `tick` seconds while replies are in flight (every
    `_IDLE_TICKS` ticks otherwise), and run full passes when `gate` is idle (looking every
    `look` seconds) or `longest` seconds after the last one; automatic collection comes back
    on leaving."""
    gc.freeze()
    automatic = gc.isenabled()
    gc.disable()
    stop = asyncio.Event()
    collecting = asyncio.create_task(_collect(gate, stop, tick, look, longest))
    try:
        yield
    finally:
        stop.set()
        await collecting
        if automatic:
            gc.enable()


async def _collect(
    gate: ReplyGate, stop: asyncio.Event, tick: float, look: float, longest: float
) -> None:
    last = looked = time.monotonic()
    begun = gate.begun  # replies at the last full pass: an idle bot needs no other
    while not stop.is_set():
        await asyncio.sleep(tick if not gate.idle_now() else tick * _IDLE_TICKS)
        gc.collect(0)
        now = time.monotonic()
        if now - looked < look:
            continue
        looked = now
        if (gate.begun != begun and gate.idle_now()) or now - last > longest:
            gc.collect()
            last, begun = time.monotonic(), gate.begun
