"""What limits and usage records add to each message: the database work, timed.

    PYTHONPATH=. python bench/limits_bench.py [--postgres URL] [--rounds N]

Times, on a fresh SQLite file (and a fresh PostgreSQL database when a server URL is given):
- `admit`: one per-minute admission (advisory lock on PostgreSQL, delete expired, read the
  person's last minute, insert), for a person with a high limit, so every call is admitted;
- `tokens_on`: the daily-token check (a sum over the person's rows of the day);
- `record`: one usage upsert (the write after each model call);
with `--rows` usage rows of other people and days already stored. Prints median and p95 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from memory.db import create_engine, migrate
from memory.usage import UsageRecord, UsageStore, utc_today


async def _timed(rounds: int, call: Callable[[int], Awaitable[object]]) -> str:
    times = []
    for number in range(rounds):
        started = time.perf_counter()
        await call(number)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    return f"median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms"


async def _fill(store: UsageStore, rows: int) -> None:
    today = utc_today()
    for number in range(rows):
        record = UsageRecord(
            "slack", f"U{number % 500}", number % 2000, "m", "reply", 900, 100, False
        )
        await store.record(record, today - timedelta(days=number % 90))


async def bench(url: str, label: str, rounds: int, rows: int) -> None:
    engine = create_engine(url)
    await migrate(engine)
    store = UsageStore(engine)
    await _fill(store, rows)
    record = UsageRecord("slack", "U-bench", 1, "gpt-4o-mini", "reply", 900, 100, False)
    print(f"{label} ({rows:,} usage rows stored, {rounds} rounds):")
    print("  admit     ", await _timed(rounds, lambda _: store.admit("slack", "U-bench", 10**6)))
    print(
        "  tokens_on ", await _timed(rounds, lambda _: store.tokens_on("slack", "U1", utc_today()))
    )
    print("  record    ", await _timed(rounds, lambda _: store.record(record)))
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="postgresql+asyncpg://… of a server to use")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        sqlite = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await bench(sqlite, "SQLite", args.rounds, args.rows)
    if args.postgres:
        name = f"parley_bench_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(args.postgres, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            await bench(url, "PostgreSQL", args.rounds, args.rows)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
