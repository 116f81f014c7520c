"""Replies in flight on SQLite and PostgreSQL: stored as their messages are posted, found again
after a crash (another engine on the same database), forgotten once delivered or mended."""

from __future__ import annotations

from memory.db import create_engine, migrate
from memory.inbound import InboundQueue, NewItem, order_key
from memory.inflight import LeftOver, RepliesInFlight


async def test_what_a_crash_leaves_is_found_by_the_next_start(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        before = RepliesInFlight(engine, "crashed")
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
        after = RepliesInFlight(engine, "restarted")
        left = await after.left_over("discord")
        assert left == [LeftOver(cut, "20", ("2", "3"))]
        await after.forget(cut)
        assert await after.left_over("discord") == []
        assert [entry.posted for entry in await after.left_over("slack")] == [()]
    finally:
        await engine.dispose()


async def test_a_live_process_keeps_its_replies(database_url: str) -> None:
    """Several processes on one database: a reply is left over only once the process showing
    it holds no live claim (it died), never while it is being delivered."""
    engine = create_engine(database_url)
    await migrate(engine)
    clock = [1_000_000.0]
    try:
        queue = InboundQueue(engine, "busy", lease=30, clock=lambda: clock[0])
        await queue.add(NewItem("slack", "C1/1.0", "c", order_key("1.0"), "slack", "{}", "{}"))
        claimed = await queue.claim(["slack"])
        assert claimed is not None
        async with engine.begin() as connection:  # its reply was stored: still being shown
            await connection.execute(queue.finishing(claimed.id))
        busy = RepliesInFlight(engine, "busy", clock=lambda: clock[0])
        other = RepliesInFlight(engine, "other", clock=lambda: clock[0])
        row = await busy.start("slack", "C1", ["1.1"])
        assert await other.left_over("slack") == []  # its process lives
        assert await busy.left_over("slack") == []  # never one's own
        clock[0] += 31  # the process died: its claim ran out
        assert await other.left_over("slack") == [LeftOver(row, "C1", ("1.1",))]
    finally:
        await engine.dispose()
