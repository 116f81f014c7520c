"""How long does assembling the history window take as a conversation grows?

    python bench/window_bench.py [--sizes 1000,100000,1000000]

Builds one SQLite conversation per size (bulk inserts of ~40-token messages), then times
`Store.window` for a 4,096- and a 128,000-token budget. The window reads (id, tokens) pairs
newest-first and stops at the first message that does not fit, so the time should depend on the
budget, not on the conversation's length.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from memory.db import create_engine, migrate
from memory.keys import ConversationKey
from memory.store import Store
from memory.tables import Message

BATCH = 50_000


async def build(path: Path, size: int) -> Store:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    store = Store(engine)
    conversation = await store.conversation(ConversationKey("bench", "w", "c"))
    for start in range(0, size, BATCH):
        async with engine.begin() as connection:
            await connection.execute(
                insert(Message),
                [
                    {
                        "conversation_id": conversation.id,
                        "role": "user",
                        "author_id": "a",
                        "author_name": "Alice",
                        "content": f"message {i} " + "lorem ipsum " * 18,
                        "tokens": 40,
                    }
                    for i in range(start, min(start + BATCH, size))
                ],
            )
    return store


async def time_window(store: Store, budget: int, repeats: int = 20) -> tuple[float, int]:
    conversation = await store.conversation(ConversationKey("bench", "w", "c"))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        window = await store.window(conversation, 2**62, budget, per_message=4)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, len(window)


async def main(sizes: list[int]) -> None:
    print(f"{'messages':>10} {'budget':>8} {'kept':>6} {'median ms':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            store = await build(Path(tmp) / f"{size}.db", size)
            for budget in (4_096, 128_000):
                ms, kept = await time_window(store, budget)
                print(f"{size:>10,} {budget:>8,} {kept:>6,} {ms:>10.2f}")
            await store.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")]))
