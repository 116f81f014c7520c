"""The inbound queue on SQLite and PostgreSQL: stored once per platform event, claimed in the
platform's order one item per conversation at a time, leases taken over when a process dies,
stale items marked missed; on PostgreSQL two engines ("processes") claim concurrently."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.db import create_engine, migrate
from memory.inbound import Claimed, InboundQueue, NewItem, State, _claiming, order_key
from memory.tables import InboundItem, open_item


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def item(conversation: str, ts: str, lane: str = "slack", event: str | None = None) -> NewItem:
    return NewItem(
        platform="slack",
        event_key=event or f"{conversation}/{ts}",
        conversation=conversation,
        order_key=order_key(ts),
        lane=lane,
        message=f'{{"text": "{ts}"}}',
        route="{}",
    )


def number(claimed: Claimed) -> int:
    return int(float(json.loads(claimed.message)["text"]))


def test_order_keys_sort_like_the_platform_ids() -> None:
    assert order_key("1700000000.000100") < order_key("1700000000.0002")
    assert order_key("999.9") < order_key("1000.0")
    assert order_key("1234567890123456789") > order_key("987654321098765432")
    assert order_key("not-a-number", fallback=5.0) == order_key("5.000000")


async def test_a_redelivery_is_recognised_by_the_database(engine: AsyncEngine) -> None:
    queue = InboundQueue(engine, "p1")
    assert await queue.add(item("C1", "1.1")) is not None
    assert await queue.add(item("C1", "1.1")) is None
    assert await InboundQueue(engine, "p2").add(item("C1", "1.1")) is None  # another process
    recorded = item("C1", "1.0")
    assert await queue.add(recorded, State.ANSWERED) is not None  # only recorded: not answered
    assert await queue.add(recorded) is None
    assert await queue.counts() == {"pending": 1, "answered": 1}


async def test_claims_follow_platform_order_one_per_conversation(engine: AsyncEngine) -> None:
    queue = InboundQueue(engine, "p1")
    # Received out of order: the later message of C1 arrived first.
    for conversation, ts in [("C1", "3.0"), ("C2", "5.0"), ("C1", "1.0"), ("C1", "2.0")]:
        await queue.add(item(conversation, ts))
    first = await queue.claim(["slack"])
    second = await queue.claim(["slack"])
    assert first is not None and second is not None
    assert {first.message, second.message} == {'{"text": "1.0"}', '{"text": "5.0"}'}
    assert await queue.claim(["slack"]) is None  # both conversations are being answered
    c1 = first if first.message.endswith('1.0"}') else second
    assert await queue.finish(c1.id)
    after = await queue.claim(["slack"])
    assert after is not None and after.message == '{"text": "2.0"}'
    assert not await queue.finish(c1.id)  # ended already


async def test_lanes_keep_items_to_their_processes(engine: AsyncEngine) -> None:
    queue = InboundQueue(engine, "p1")
    await queue.add(item("G1", "1", lane="discord/1"))
    assert await queue.claim(["discord/0"]) is None
    assert await queue.claim([]) is None
    claimed = await queue.claim(["discord/0", "discord/1"])
    assert claimed is not None and claimed.lane == "discord/1"


async def test_a_dead_process_leaves_its_item_to_another(engine: AsyncEngine) -> None:
    clock = Clock()
    dead = InboundQueue(engine, "dead", lease=30, clock=clock)
    alive = InboundQueue(engine, "alive", lease=30, clock=clock)
    await dead.add(item("C1", "1.0"))
    await dead.add(item("C1", "2.0"))
    taken = await dead.claim(["slack"])
    assert taken is not None
    clock.now += 10
    assert await dead.renew(taken.id)
    clock.now += 25  # renewed at +10: alive until +40
    assert await alive.claim(["slack"]) is None
    clock.now += 6
    again = await alive.claim(["slack"])
    assert again is not None and again.id == taken.id  # the same item, not the next one
    assert not await dead.renew(taken.id)  # the dead one lost it
    assert not await dead.finish(taken.id)
    async with engine.begin() as connection:  # finished with the reply, in its transaction
        await connection.execute(alive.finishing(again.id))
    following = await alive.claim(["slack"])
    assert following is not None and following.message == '{"text": "2.0"}'


async def test_released_items_are_claimed_again(engine: AsyncEngine) -> None:
    queue = InboundQueue(engine, "p1")
    await queue.add(item("C1", "1.0"))
    taken = await queue.claim(["slack"])
    assert taken is not None
    await queue.release(taken.id)
    again = await queue.claim(["slack"])
    assert again is not None and again.id == taken.id


async def test_stale_items_are_missed_young_ones_resumed(engine: AsyncEngine) -> None:
    clock = Clock()
    before = InboundQueue(engine, "crashed", lease=30, clock=clock)
    await before.add(item("C1", "1.0"))  # old: never started
    await before.add(item("C2", "1.0"))  # old: its process died answering it
    await before.claim(["slack"])
    await before.claim(["slack"])
    clock.now += 500
    await before.add(item("C3", "1.0"))  # young
    clock.now += 200
    after = InboundQueue(engine, "restarted", lease=30, clock=clock)
    assert await after.miss_stale(["slack"], 600, pending=True) == 2
    resumed = await after.claim(["slack"])
    assert resumed is not None and resumed.message == '{"text": "1.0"}'
    assert await after.counts() == {"missed": 2, "answering": 1}
    # While running, only expired claims are checked: a pending backlog is left to be answered.
    await after.add(item("C4", "1.0"))
    clock.now += 700
    assert await after.miss_stale(["slack"], 600, pending=False) == 1  # C3's lease ran out
    assert (await after.counts())["pending"] == 1


async def test_two_processes_never_share_a_conversation(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes need PostgreSQL")
    engines = [create_engine(database_url) for _ in range(2)]
    await migrate(engines[0])
    try:
        queues = [InboundQueue(engine, f"p{n}") for n, engine in enumerate(engines)]
        for n in range(60):
            await queues[n % 2].add(item(f"C{n % 6}", f"{n}.0"))
        answering: dict[str, int] = {}
        answered: list[Claimed] = []

        async def worker(queue: InboundQueue) -> None:
            while len(answered) < 60:
                claimed = await queue.claim(["slack"])
                if claimed is None:
                    await asyncio.sleep(0.005)
                    continue
                conversation = f"C{number(claimed) % 6}"
                assert conversation not in answering, "two items of one conversation at once"
                answering[conversation] = claimed.id
                await asyncio.sleep(0.002)
                del answering[conversation]
                answered.append(claimed)
                assert await queue.finish(claimed.id)

        async with asyncio.timeout(60):
            await asyncio.gather(*(worker(queues[n % 2]) for n in range(8)))
        ids = [claimed.id for claimed in answered]
        assert len(ids) == len(set(ids)) == 60  # never one item twice
        for n in range(6):  # each conversation in order
            numbers = [number(c) for c in answered if number(c) % 6 == n]
            assert numbers == sorted(numbers)
    finally:
        for engine in engines:
            await engine.dispose()


async def _claim_plan(engine: AsyncEngine) -> list[Any]:
    """The database's account of one claim as it runs: SQLite's plan; PostgreSQL's executed
    plan (JSON), on a table it has not analyzed (a new database; autovacuum is off here)."""
    postgres = engine.dialect.name == "postgresql"
    explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " if postgres else "EXPLAIN QUERY PLAN "

    def explained(*args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return explain + statement, parameters

    now = time.time()
    values = {"lanes": ["slack"], "now": now, "claimer": "p1", "until": now + 30}
    event.listen(engine.sync_engine, "before_cursor_execute", explained, retval=True)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(_claiming(postgres), values)).all()
            await connection.rollback()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", explained)
    return [row[-1] for row in rows]


async def _backlog(engine: AsyncEngine, conversations: int, first: int = 0) -> None:
    rows = [
        {
            "platform": "slack",
            "event_key": f"C{c}/{n}",
            "conversation": f"C{c}",
            "order_key": order_key(f"{n}.0"),
            "lane": "slack",
            "message": "{}",
            "route": "{}",
            "state": State.PENDING,
            "lease_until": 0.0,
            "received_at": 0.0,
        }
        for n in range(10)
        for c in range(first, first + conversations)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(InboundItem), rows)


def test_the_open_items_indexes_name_the_open_states() -> None:
    # memory/tables.py writes them out (a partial index needs its condition as written).
    condition = str(open_item(InboundItem.state).compile(compile_kwargs={"literal_binds": True}))
    assert condition == f"inbound.state IN ('{State.PENDING}', '{State.ANSWERING}')"
    assert isinstance(InboundItem.__table__, Table)
    for index in InboundItem.__table__.indexes:
        if index.name and index.name.startswith("ix_inbound_open_"):
            for dialect in ("sqlite", "postgresql"):
                assert f"inbound.{index.dialect_options[dialect]['where']}" == condition


async def test_a_claim_reads_only_open_items_by_their_indexes(engine: AsyncEngine) -> None:
    """A backlog costs each claim a probe per waiting item at most, never a scan of the
    table or of every open item for each one (as a claim did on a table PostgreSQL had not
    analyzed: half a second a claim with 1,500 waiting)."""
    await _backlog(engine, 50)
    if engine.dialect.name == "sqlite":
        plan = await _claim_plan(engine)
        for alias in ("candidate", "earlier", "busy"):
            [step] = [line for line in plan if f" {alias} " in line]
            assert "USING INDEX ix_inbound_open_" in step, plan
        return
    [[smaller]] = await _claim_plan(engine)
    await _backlog(engine, 50, first=50)
    [[larger]] = await _claim_plan(engine)
    read = [
        plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
        for plan in (smaller, larger)
    ]
    assert read[1] < 2.5 * read[0], read  # twice the backlog: no more than twice the reading


async def test_a_message_s_own_writes_on_postgresql_open_no_transaction(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Added, claimed, renewed and ended each in one statement: in autocommit, with no BEGIN
    and COMMIT round trips (counted where asyncpg starts a transaction)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's transactions cost no round trip")
    import asyncpg.transaction

    started: list[object] = []
    start = asyncpg.transaction.Transaction.start

    async def counted(self: asyncpg.transaction.Transaction) -> None:
        started.append(self)
        await start(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", counted)
    queue = InboundQueue(engine, "p1")
    await queue.add(item("C1", "1.0"))
    claimed = await queue.claim(["slack"])
    assert claimed is not None
    assert await queue.renew(claimed.id)
    assert await queue.finish(claimed.id)
    assert started == []
