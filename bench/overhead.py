"""Overhead per message: from `Parley.reply(message)` being called to the request arriving at an
instant fake model (another process), with recall and the summary on; and the SQL statements
and pool checkouts that one reply costs (its own task and the window read it starts ahead, not
the background summary). One message the bot does not answer is stored first, as in a chat."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.fixtures import KEY, MODEL, questions
from bot.core import Parley
from bot.messages import Author, ConversationKey, Final, Inbound
from bot.prompt import READ_AHEAD
from bot.runtime import open_parley
from bot.settings import Settings


def bench_settings(base_url: str, database_url: str, window: int, **extra: Any) -> Settings:
    """Recall and summary on; web search and embeddings off; an instant model."""
    return Settings(
        openai_base_url=base_url,
        openai_api_key="bench",
        model=MODEL,
        database_url=database_url,
        data_dir=Path(tempfile.gettempdir()),
        context_tokens=window,
        recall=True,
        search_provider="off",
        embedding_model=None,
        **extra,
    )


class DatabaseWork:
    """Counts SQL statements and pool checkouts made by one asyncio task (and the window read
    it starts ahead)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.counts: Counter[str] = Counter()
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine.pool, "checkout", self._checkout)

    def _mine(self) -> bool:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # called outside the loop's thread
            return False
        # The reply's own task, and the window read it starts ahead (bot/prompt.py).
        return task is not None and (task is self.task or task.get_name() == READ_AHEAD)

    def _statement(self, *_args: Any) -> None:
        if self._mine():
            self.counts["statements"] += 1

    def _checkout(self, *_args: Any) -> None:
        if self._mine():
            self.counts["checkouts"] += 1


@dataclass(frozen=True)
class Overhead:
    p50_ms: float
    p99_ms: float
    statements: float  # per message
    checkouts: float
    failures: int
    cpu_ms: float  # median CPU time of the bench process per whole reply (all threads)


async def answer(parley: Parley, key: ConversationKey, text: str, message_id: str) -> Final:
    final: Final | None = None
    async for reply_event in parley.reply(Inbound(key, Author("alice", "Alice"), text, message_id)):
        if isinstance(reply_event, Final):
            final = reply_event
    assert final is not None, "the core yielded no reply"
    return final


def arrivals(base_url: str) -> dict[int, float]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/arrivals") as response:
        return {int(k): float(v) for k, v in json.load(response).items()}


async def measure(
    base_url: str, database_url: str, window: int, messages: int, warmup: int = 10
) -> Overhead:
    async with open_parley(bench_settings(base_url, database_url, window), serving=True) as parley:
        work = DatabaseWork(parley.store.engine)
        work.task = asyncio.current_task()
        started: dict[int, float] = {}
        failures = 0
        cpu: list[float] = []
        # A reply stores two messages: with an even count of stores before the timed ones, work
        # a store does every 64th write (FTS5 merged so until migration 0015) fell on the bot's
        # answers only, after the request. A chat also stores messages nobody answers.
        await parley.record(Inbound(KEY, Author("bob", "Bob"), "an aside nobody answers"))
        for n, text in enumerate(questions(warmup + messages)):
            if n == warmup:
                work.counts.clear()
            started[n], cpu_before = time.monotonic(), time.process_time()
            final = await answer(parley, KEY, text, f"bench-{time.time_ns()}-{n}")
            if n >= warmup:
                cpu.append(time.process_time() - cpu_before)
            failures += final.failed
            await parley.drain()  # the summary is written between messages, as in a chat
        arrived = await asyncio.to_thread(arrivals, base_url)
    measured = [n for n in range(warmup, warmup + messages) if n in arrived]
    times = sorted((arrived[n] - started[n]) * 1000 for n in measured)
    return Overhead(
        statistics.median(times),
        times[min(len(times) - 1, round(len(times) * 0.99))],
        work.counts["statements"] / messages,
        work.counts["checkouts"] / messages,
        failures + (messages - len(times)),
        statistics.median(cpu) * 1000,
    )
