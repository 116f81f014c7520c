"""The collector runs on a clock: the youngest generation collected every tick (and
automatically only in bursts), full passes once no reply is in flight (or `longest` has
passed); the automatic thresholds come back afterwards."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest

from bot.collector import _BURST, _NEVER, collections_on_a_clock
from bot.lifecycle import ReplyGate


@pytest.fixture
def passes() -> Iterator[dict[int, list[float]]]:
    """When each pass of each generation ended (monotonic clock)."""
    ended: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            ended[info["generation"]].append(time.monotonic())

    gc.callbacks.append(watch)
    yield ended
    gc.callbacks.remove(watch)


async def reply_in_flight(gate: ReplyGate, done: asyncio.Event) -> None:
    with gate.track():
        await done.wait()


async def test_a_full_pass_waits_until_no_reply_is_in_flight(
    passes: dict[int, list[float]],
) -> None:
    gate, done = ReplyGate(), asyncio.Event()
    thresholds = gc.get_threshold()
    async with collections_on_a_clock(gate, tick=0.01, look=0.05):
        assert gc.get_threshold() == (_BURST, _NEVER, _NEVER)  # automatic: bursts only
        replying = asyncio.create_task(reply_in_flight(gate, done))
        await asyncio.sleep(0.3)
        assert len(passes[0]) >= 10  # on the clock
        assert passes[2] == []  # not while the reply is in flight
        done.set()
        await replying
        ended = time.monotonic()
        await asyncio.sleep(0.3)
        assert passes[2] and passes[2][0] >= ended  # once idle
        await asyncio.sleep(0.3)
        assert len(passes[2]) == 1  # and not again while nothing happens
    assert gc.get_threshold() == thresholds


async def test_a_burst_between_ticks_is_collected_as_it_grows(
    passes: dict[int, list[float]],
) -> None:
    # 1,000 replies started in one loop iteration: no tick can run until it ends, and one pass
    # over all it allocated stopped the loop for ~25 ms.
    async with collections_on_a_clock(ReplyGate(), tick=0.05, look=0.05):
        await asyncio.sleep(0)
        before = len(passes[0])
        kept = [[n] for n in range(5 * _BURST)]  # no await: one step
        assert len(passes[0]) - before >= 4
        assert passes[1] == passes[2] == []  # never more than the youngest generation
    assert len(kept) == 5 * _BURST


async def test_load_that_never_stops_still_gets_full_passes(
    passes: dict[int, list[float]],
) -> None:
    gate, done = ReplyGate(), asyncio.Event()
    async with collections_on_a_clock(gate, tick=0.01, look=0.05, longest=0.2):
        replying = asyncio.create_task(reply_in_flight(gate, done))
        await asyncio.sleep(0.6)
        done.set()
        await replying
    assert passes[2]  # the reply never ended meanwhile
