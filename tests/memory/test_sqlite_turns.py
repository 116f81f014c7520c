"""SQLite's one connection handed from statement to statement (memory/sqlite_turns.py): every
statement gets its turn and its own result, transactions queued at the pool are not starved,
a failed write's transaction is never handed on, and a cancelled statement passes its turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from memory.db import SqliteLink, create_engine, linked, migrated_engine, sqlite_rows
from memory.sqlite_turns import _HANDOFFS, turns


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(sqlite_url) as engine:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE marks (n INTEGER PRIMARY KEY)"))
        yield engine


async def _statement(engine: AsyncEngine, sql: str, values: dict[str, int]) -> list[tuple[int]]:
    async with linked(engine) as link:
        assert isinstance(link, SqliteLink)
        return await sqlite_rows(link, sql, values, commit=sql.startswith("INSERT"))


def _checkouts(engine: AsyncEngine) -> list[int]:
    seen: list[int] = []
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: seen.append(1))
    return seen


async def test_concurrent_statements_each_get_their_own_result_on_few_checkouts(
    engine: AsyncEngine,
) -> None:
    checkouts = _checkouts(engine)
    reads = [_statement(engine, "SELECT :n * 2", {"n": n}) for n in range(300)]
    assert await asyncio.gather(*reads) == [[(n * 2,)] for n in range(300)]
    assert len(checkouts) <= 300 // _HANDOFFS + 2  # handed on, not checked in and out


async def test_a_transaction_waiting_at_the_pool_gets_its_turn(engine: AsyncEngine) -> None:
    done: list[str] = []

    async def statement(n: int) -> None:
        await _statement(engine, "INSERT INTO marks VALUES (:n)", {"n": n})
        done.append("statement")

    async def transaction() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO marks VALUES (-1)"))
        done.append("transaction")

    first = [asyncio.create_task(statement(n)) for n in range(10)]
    await asyncio.sleep(0)  # these are under way
    waiting = asyncio.create_task(transaction())
    await asyncio.sleep(0)  # queued at the pool
    await asyncio.gather(*first, *(statement(n) for n in range(10, 200)), waiting)
    assert done.index("transaction") <= 10 + _HANDOFFS
    [(count,)] = await _statement(engine, "SELECT count(*) FROM marks", {})
    assert count == 201


async def test_a_failed_write_does_not_hand_on_its_transaction(
    engine: AsyncEngine, sqlite_url: str
) -> None:
    # A failing INSERT leaves the transaction it began open (with the write lock): the next
    # statement gets a connection out of any transaction, and every write that succeeded is
    # committed.
    async def in_transaction() -> bool:
        async with linked(engine) as link:
            assert isinstance(link, SqliteLink)
            return link.driver.in_transaction

    work = []
    for n in range(30):  # each write twice: the second fails, a look follows each
        work += [
            _statement(engine, "INSERT INTO marks VALUES (:n)", {"n": n}),
            _statement(engine, "INSERT INTO marks VALUES (:n)", {"n": n}),
            in_transaction(),
        ]
    results = await asyncio.gather(*work, return_exceptions=True)
    assert [type(r) for r in results[1::3]] == [IntegrityError] * 30
    assert results[2::3] == [False] * 30
    other = create_engine(sqlite_url)
    try:
        async with other.connect() as connection:
            stored = (await connection.execute(text("SELECT n FROM marks ORDER BY n"))).all()
    finally:
        await other.dispose()
    assert [n for (n,) in stored] == list(range(30))


async def test_a_statement_cancelled_waiting_or_on_its_turn_passes_the_turn(
    engine: AsyncEngine,
) -> None:
    release = asyncio.Event()
    lane = turns(engine.sync_engine)

    async def holder() -> None:
        async with lane.turn(engine.sync_engine.pool):
            await release.wait()

    async def statement(n: int) -> list[tuple[int]]:
        return await _statement(engine, "SELECT :n", {"n": n})

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(statement(n)) for n in range(4)]
    await asyncio.sleep(0)  # all four wait for the holder
    waiting[0].cancel()  # while waiting
    release.set()
    await asyncio.sleep(0)  # the holder hands the connection to the second
    waiting[1].cancel()  # its turn has come but it has not run yet
    assert await waiting[2] == [(2,)] and await waiting[3] == [(3,)]
    for cancelled in waiting[:2]:
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    await holding
    assert await statement(9) == [(9,)]


async def test_statements_after_the_engine_is_disposed_use_its_new_pool(
    engine: AsyncEngine,
) -> None:
    await _statement(engine, "INSERT INTO marks VALUES (1)", {})
    await engine.dispose()  # replaces the pool: one connection still, the new pool's
    checkouts = _checkouts(engine)
    assert await _statement(engine, "SELECT count(*) FROM marks", {}) == [(1,)]
    assert checkouts == [1]


async def test_statements_one_after_another_share_a_checkout_until_the_loop_turns(
    engine: AsyncEngine,
) -> None:
    checkouts = _checkouts(engine)
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    for n in range(5):  # a reply's reads and writes, with only Python between them
        await _statement(engine, "INSERT INTO marks VALUES (:n)", {"n": n})
    assert checkouts == [1] and pool.checkedout() == 1
    await asyncio.sleep(0)  # the loop's next turn: back in the pool
    assert pool.checkedout() == 0
    async with engine.begin() as connection:  # a session gets it at once
        assert (await connection.execute(text("SELECT count(*) FROM marks"))).scalar() == 5
    assert len(checkouts) == 2


async def test_disposing_of_the_engine_closes_a_connection_left_checked_out(
    engine: AsyncEngine,
) -> None:
    async with linked(engine) as link:
        assert isinstance(link, SqliteLink)
        driver = link.driver
    await engine.dispose()  # before the loop's next turn: it was still checked out
    with pytest.raises(ValueError, match="no active connection"):
        await driver.execute("SELECT 1")
