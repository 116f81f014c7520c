"""The garbage collector on a clock, its full passes when no reply is being written.

CPython starts a young collection when allocations less deallocations pass a threshold (700).
Under load the deallocations of older objects (finished replies) offset the new ones, so the
youngest generation grew to 25,000-50,000 objects between collections, each walked with the
event loop stopped: steps of 15-45 ms in the throughput bench (1,000 conversations in flight),
by collections that found no garbage (replies leave little cyclic garbage). So a task collects
the youngest generation every `tick` seconds (what a tick allocates), its survivors left to the
full passes: throughput bench, 2,000 replies, the collector's CPU 550 -> 270 ms.

A burst that allocates without freeing (1,000 replies started in one loop iteration, before any
timer can fire) still meets the automatic threshold, raised to `_BURST`: it is collected in
passes of that size as it grows (~1-2 ms each), not in one pass over all of it when the tick
comes (~200,000 objects: a 25 ms step in the throughput bench). Automatic collection never
goes past the youngest generation.

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
# Allocations less deallocations that start a young collection between ticks.
_BURST = 10_000
# Young collections before an automatic pass of an older generation: never in practice (a full
# pass, which resets the count, comes at least every `longest` seconds).
_NEVER = 2**30


@contextlib.asynccontextmanager
async def collections_on_a_clock(
    gate: ReplyGate, tick: float = 0.01, look: float = 1.0, longest: float = 600.0
) -> AsyncIterator[None]:
    """Freeze what is loaded (it lives as long as the process), leave automatic collection to
    bursts (`_BURST`, youngest generation only), collect the youngest generation every `tick`
    seconds while replies are in flight (every `_IDLE_TICKS` ticks otherwise), and run full
    passes when `gate` is idle (looking every `look` seconds) or `longest` seconds after the
    last one; the thresholds come back on leaving."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(_BURST, _NEVER, _NEVER)
    stop = asyncio.Event()
    collecting = asyncio.create_task(_collect(gate, stop, tick, look, longest))
    try:
        yield
    finally:
        stop.set()
        await collecting
        gc.set_threshold(*thresholds)


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
