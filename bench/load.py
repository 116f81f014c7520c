"""Load in a child process: throughput across many concurrent conversations, and the resident
memory after many conversations. Run by bench/__main__.py; prints one JSON object.

    python -m bench.load throughput DATABASE_URL MODEL_URL FIRST COUNT ROUNDS
    python -m bench.load footprint DATABASE_URL MODEL_URL COUNT

Throughput: COUNT conversations (numbered from FIRST) each get a first message (not timed:
it creates the conversation), then ROUNDS more, all conversations at once, one message at a
time each (the core keeps a conversation's messages in order). Stalls: see StallWatch.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.overhead import answer, bench_settings
from bot.messages import ConversationKey
from bot.runtime import open_parley

_WINDOW = 4096
_TICK = 0.001


def _key(n: int) -> ConversationKey:
    return ConversationKey("bench", "load", f"c{n}")


def _where(handle: asyncio.events.Handle) -> str:
    """Where a task step ended: the innermost frames of the task's await chain."""
    owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    if not isinstance(owner, asyncio.Task):
        return repr(handle)[:200]
    frames = []
    awaited: Any = owner.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return " > ".join(frames[-4:])


class StallWatch:
    """The longest single step the event loop ran (one callback or one task step: while it
    runs nothing else can), in wall-clock time, and the worst lateness of a 1 ms timer (which
    also counts waiting behind every other ready step: queueing under load).

    Wall clock only: the step's CPU time (`time.thread_time()`, a system call, twice a step)
    cost the bot ~8% of its throughput in this run. Wall time also counts any time the OS gave
    the loop's core to another process during the step."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.what = ""
        self.lateness = 0.0
        self._run = asyncio.events.Handle._run
        watch = self

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            watch._run(handle)
            took = time.perf_counter() - started
            if took > watch.longest:
                watch.longest, watch.what = took, _where(handle)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(_TICK)
            self.lateness = max(self.lateness, time.perf_counter() - before - _TICK)

    def stop(self) -> dict[str, float | str]:
        self._task.cancel()
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]
        return {
            "step_ms": self.longest * 1000,
            "step": self.what,
            "lateness_ms": self.lateness * 1000,
        }


async def throughput(database: str, model: str, first: int, count: int, rounds: int) -> None:
    async with open_parley(bench_settings(model, database, _WINDOW), serving=True) as parley:
        failed = 0

        async def talk(n: int, texts: list[str]) -> None:
            nonlocal failed
            for i, text in enumerate(texts):
                final = await answer(parley, _key(n), text, f"{n}-{i}-{time.time_ns()}")
                failed += final.failed

        conversations = range(first, first + count)
        await asyncio.gather(*(talk(n, [f"Hello, I am number {n}."]) for n in conversations))
        texts = [f"Round {r}: what about the w{r}b plan and the budget?" for r in range(rounds)]
        watch = StallWatch()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(talk(n, texts) for n in conversations))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stalls = watch.stop()
        await parley.drain()
    result = {
        "messages": count * rounds,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "failed": failed,
        **stalls,
    }
    print(json.dumps(result))


def _resident_mb() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def footprint(database: str, model: str, count: int) -> None:
    async with open_parley(bench_settings(model, database, _WINDOW), serving=True) as parley:
        gc.collect()
        start, _peak = _resident_mb()
        numbers = iter(range(count))
        failed = 0

        async def talk() -> None:
            # 100 conversations at a time, as people arrive: a task per conversation made up
            # front (10,000 waiting on a semaphore) was the harness's memory, not the bot's.
            nonlocal failed
            for n in numbers:
                final = await answer(parley, _key(n), f"Hi, this is person {n}.", f"f{n}")
                failed += final.failed

        await asyncio.gather(*(talk() for _ in range(100)))
        await parley.drain()
        # Until this task yields, the loop's handle that woke it holds the finished gather
        # and, through it, the talkers' tasks: the harness's, not the bot's memory.
        await asyncio.sleep(0)
        gc.collect()
        rss, peak = _resident_mb()
    print(json.dumps({"start_mb": start, "rss_mb": rss, "peak_mb": peak, "failed": failed}))


if __name__ == "__main__":
    kind, database, model, *numbers = sys.argv[1:]
    values = [int(n) for n in numbers]
    if kind == "throughput":
        asyncio.run(throughput(database, model, *values))
    else:
        asyncio.run(footprint(database, model, *values))
