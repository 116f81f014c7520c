"""Full garbage-collector passes wait until no reply is in flight (or `longest` has passed), and
the collector's thresholds come back afterwards."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest

from bot.collector import full_passes_when_idle
from bot.lifecycle import ReplyGate


@pytest.fixture
def full_passes() -> Iterator[list[float]]:
    """When each full pass ended (monotonic clock)."""
    passes: list[float] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            passes.append(time.monotonic())

    gc.callbacks.append(watch)
    yield passes
    gc.callbacks.remove(watch)


async def reply_in_flight(gate: ReplyGate, done: asyncio.Event) -> None:
    with gate.track():
        await done.wait()


async def test_a_full_pass_waits_until_no_reply_is_in_flight(full_passes: list[float]) -> None:
    gate, done = ReplyGate(), asyncio.Event()
    before = gc.get_threshold()
    async with full_passes_when_idle(gate, look=0.05):
        assert gc.get_threshold()[2] > 10**6  # no automatic full pass
        replying = asyncio.create_task(reply_in_flight(gate, done))
        await asyncio.sleep(0)
        gc.collect(1)  # survivors handed to the oldest generation: a full pass is due
        await asyncio.sleep(0.3)
        assert full_passes == []  # not while the reply is in flight
        done.set()
        await replying
        ended = time.monotonic()
        await asyncio.sleep(0.3)
        assert full_passes and full_passes[0] >= ended  # once idle
    assert gc.get_threshold() == before


async def test_load_that_never_stops_still_gets_full_passes(full_passes: list[float]) -> None:
    gate, done = ReplyGate(), asyncio.Event()
    async with full_passes_when_idle(gate, look=0.05, longest=0.2):
        replying = asyncio.create_task(reply_in_flight(gate, done))
        for _ in range(6):
            gc.collect(1)
            await asyncio.sleep(0.1)
        done.set()
        await replying
    assert full_passes  # the reply never ended meanwhile
