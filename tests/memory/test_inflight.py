"""Replies in flight on SQLite and PostgreSQL: stored as their messages are posted, found again
after a crash (another engine on the same database), forgotten once delivered or mended."""

from __future__ import annotations

from memory.db import create_engine, migrate
from memory.inflight import LeftOver, RepliesInFlight


async def test_what_a_crash_leaves_is_found_by_the_next_start(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        before = RepliesInFlight(engine)
        delivered = await before.start("discord", "10", ["1"])
        cut = await before.start("discord", "20", ["2"])
        await before.posted(cut, ["2", "3"])  # a second message for a longer reply
        emptied = await before.start("slack", "C1", ["4"])
        await before.posted(emptied, [])  # it took its placeholder away
        await before.forget(delivered)
    finally:
        await engine.dispose()

    engine = create_engine(database_url)  # the restarted process
    try:
        after = RepliesInFlight(engine)
        left = await after.left_over("discord")
        assert left == [LeftOver(cut, "20", ("2", "3"))]
        await after.forget(cut)
        assert await after.left_over("discord") == []
        assert [entry.posted for entry in await after.left_over("slack")] == [()]
    finally:
        await engine.dispose()
