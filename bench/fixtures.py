"""Deterministic chat history and the databases the benchmarks read, built once and cached.

A fixture is one conversation (`bench/w/c`) of N generated messages plus a stored rolling
summary. SQLite files are built with bulk inserts and the FTS5 index rebuilt once at the end;
PostgreSQL databases (`parley_bench_<N>`) with COPY, the GIN index built after the rows. Both
are cached (SQLite under $PARLEY_BENCH_CACHE, default the temp dir) and keyed by the newest
migration, so a schema change rebuilds them. A run reads a scratch copy of the SQLite file
(`sqlite_copy`); on PostgreSQL `reset` removes what a run added.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory.db import create_engine, migrate
from memory.index_merging import merge_step
from memory.keys import ConversationKey
from memory.tokens import encoding_for, render

CACHE = Path(os.environ.get("PARLEY_BENCH_CACHE", tempfile.gettempdir())) / "parley-bench"
KEY = ConversationKey("bench", "w", "c")
MODEL = "gpt-4o-mini"
PEOPLE = ("Alice", "Bongani", "Chae-won")
_BATCH = 50_000
_VERSION = 2  # of the fixtures' contents: a new one rebuilds the cache
SUMMARY = "Alice and Bongani planned the spring release; Chae-won tracked costs. " * 12
_MIGRATIONS = Path(__file__).parent.parent / "memory" / "migrations" / "versions"
SCHEMA = max(path.name[:4] for path in _MIGRATIONS.glob("0*.py"))  # rebuild on a new migration

# A Zipf-like vocabulary: a few words in most messages, most words rare, as in real chat.
_VOCABULARY = [f"w{n}{'abcdefghij'[n % 10]}" for n in range(5000)]
_WEIGHTS = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(_VOCABULARY))))


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_VOCABULARY, cum_weights=_WEIGHTS, k=rng.randint(10, 24))
    return " ".join(words).capitalize() + "."


def questions(count: int, seed: int = 11) -> list[str]:
    """Questions that share words with the history (so recall searches for real)."""
    rng = random.Random(seed)
    return [
        f"What did {rng.choice(PEOPLE)} say about "
        f"{' and '.join(rng.choices(_VOCABULARY[20:2000], k=3))}? [bench {n}]"
        for n in range(count)
    ]


Row = tuple[str, str, str, str, int, datetime]


def history(size: int, seed: int = 7) -> Iterator[list[Row]]:
    """Rows (role, author_id, author_name, content, tokens, created_at) in batches."""
    rng = random.Random(seed)
    encoding = encoding_for(MODEL)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, size, _BATCH):
        batch = []
        for n in range(first, min(first + _BATCH, size)):
            role = "assistant" if n % 4 == 3 else "user"
            name = "Parley" if role == "assistant" else rng.choice(PEOPLE)
            batch.append(
                (role, name.lower(), name, _sentence(rng), start + timedelta(seconds=30 * n))
            )
        texts = [render(role, name, content) for role, _i, name, content, _t in batch]
        counts = [len(encoding.encode_ordinary(text)) for text in texts]
        yield [(*row[:4], tokens, row[4]) for row, tokens in zip(batch, counts, strict=True)]


def sqlite_fixture(size: int) -> str:
    """The URL of a cached SQLite file holding the fixture of `size` messages."""
    path = CACHE / f"history-{size}-{SCHEMA}-{_VERSION}.db"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        building = path.with_suffix(".building")
        building.unlink(missing_ok=True)
        _build_sqlite(building, size)
        building.replace(path)
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def sqlite_copy(size: int) -> AsyncIterator[str]:
    """The URL of a scratch copy of the fixture of `size` messages, deleted after, so every run
    starts from the same file. Deleting what a run added (`reset`) left FTS5 merge work to the
    next run's first replies: at 100k messages 15 ms stores and a p99 of 16-20 ms in the first
    run after one, 3-4 ms in the runs after it."""
    source = Path((await asyncio.to_thread(sqlite_fixture, size)).split(":///", 1)[1])
    scratch = await asyncio.to_thread(tempfile.mkdtemp, dir=CACHE)
    try:
        copy = Path(scratch) / source.name
        await asyncio.to_thread(shutil.copyfile, source, copy)
        yield f"sqlite+aiosqlite:///{copy}"
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch)


def _build_sqlite(path: Path, size: int) -> None:
    async def schema() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()

    asyncio.run(schema())
    db = sqlite3.connect(path)
    try:
        # Index once at the end, not row by row through the trigger.
        (trigger,) = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'messages_fts_insert'"
        ).fetchone()
        db.execute("DROP TRIGGER messages_fts_insert")
        db.execute(
            "INSERT INTO conversations (platform, workspace, channel, thread, reset_after, "
            "listening, created_at) VALUES (?, ?, ?, ?, 0, 0, ?)",
            (
                KEY.platform,
                KEY.workspace,
                KEY.channel,
                KEY.thread,
                datetime.now(UTC).replace(tzinfo=None),
            ),
        )
        for rows in history(size):
            # Stored as the app's SQLite rows are: naive UTC.
            rows = [(*row[:5], row[5].replace(tzinfo=None)) for row in rows]
            db.executemany(
                "INSERT INTO messages (conversation_id, role, author_id, author_name, content, "
                "tokens, created_at) VALUES (1, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        _merged(db)
        db.execute(trigger)
        db.execute(
            "INSERT INTO summaries (conversation_id, content, covers_until, updated_at) "
            "VALUES (1, ?, ?, ?)",
            (SUMMARY, max(size - 150, 1), datetime.now(UTC).replace(tzinfo=None)),
        )
        db.commit()
    finally:
        db.close()


def _merged(db: sqlite3.Connection) -> None:
    """Merge the rebuilt index as a serving bot keeps it (memory/index_merging.py), so no run
    starts with merges left over from building (until the eleventh round, two large ones in
    progress at 1M: their steps went to the runs' stores)."""
    while merge_step(db, 1000):
        pass


async def reset(url: str, size: int) -> None:
    """Drop what earlier runs added to a fixture, so every run reads the same history."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"DELETE FROM messages WHERE conversation_id = 1 AND id > {int(size)}"
            )
            await connection.exec_driver_sql(
                f"UPDATE summaries SET covers_until = {max(size - 150, 1)} "
                "WHERE conversation_id = 1"
            )
            await connection.exec_driver_sql("DELETE FROM conversations WHERE id > 1")
    finally:
        await engine.dispose()
