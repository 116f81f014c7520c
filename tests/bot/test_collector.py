"""The collector runs on a clock: automatic collection off, the youngest generation collected
every tick, full passes once no reply is in flight (or `longest` has passed); automatic
collection comes back afterwards."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest

from bot.collector import collections_on_a_clock
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
    assert gc.isenabled()
    async with collections_on_a_clock(gate, tick=0.01, look=0.05):
        assert not gc.isenabled()  # no automatic collection
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
    assert gc.isenabled()


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
