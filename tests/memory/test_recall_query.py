"""Recall's one-statement read (memory/recall_query.py), on SQLite and PostgreSQL: the window
start however the first guess of its size turns out, the best matches below it with their
neighbours, and whether documents exist."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError

from memory.context import BLANK, Surroundings
from memory.db import SqliteLink, linked, migrated_engine
from memory.keys import ConversationKey
from memory.recall_query import RecallQuery
from memory.search import MAX_TERMS
from memory.store import NewMessage, Store
from memory.transfer import ImportRow, import_rows

KEY = ConversationKey("test", "w", "recall-query")
PER = 4


async def _fill(store: Store, contents: list[str], tokens: int) -> list[int]:
    conversation = await store.conversation(KEY)
    return [
        await store.add(conversation.id, NewMessage("user", "ann", "Ann", text, tokens))
        for text in contents
    ]


async def test_the_window_start_is_exact_when_messages_are_smaller_than_guessed(
    store: Store,
) -> None:
    # 2-token messages: the first read, sized for 16-token ones, is all within the budget,
    # so the statement reads again with every row the budget could hold.
    ids = await _fill(store, [f"note {n}" for n in range(200)], tokens=2)
    conversation = await store.conversation(KEY)
    query = RecallQuery(store.engine)
    everything = await query.find(conversation, ["note"], 5, (2000, PER), [conversation.id])
    assert everything.start == ids[0]  # all 200 fit: nothing older to recall
    assert everything.hits == []
    part = await query.find(conversation, ["note"], 5, (600, PER), [conversation.id])
    assert part.start == ids[-100]  # 600 tokens hold 100 messages of 2 + 4
    assert [hit.id for hit in part.hits] == ids[-101:-106:-1]  # newest first below the window


async def test_matches_come_with_the_turns_that_complete_them_and_documents_are_noticed(
    store: Store,
) -> None:
    contents = [
        "Did you find a venue?",  # asks: completes the answer after it
        "Yes, the zebra lounge.",
        "Great!",  # the answer asks nothing: not needed
        "Morning all.",
        "Is the yak café open on Sundays? \u3000",  # asks (trailing blanks as rstrip() sees them)
        "Yes, from ten.",  # answers the question before it
    ]
    ids = await _fill(store, contents + [f"filler {n}" for n in range(60)], tokens=20)
    conversation = await store.conversation(KEY)
    query = RecallQuery(store.engine)
    for _ in range(2):  # the second plans from what the first found (density, message size)
        found = await query.find(conversation, ["zebra"], 5, (400, PER), [conversation.id])
        assert [hit.id for hit in found.hits] == [ids[1]]
        before, after = found.turns[ids[1]]
        assert before is not None and before.content == contents[0]
        assert after is None
        assert not found.documents
    found = await query.find(conversation, ["yak"], 5, (400, PER), [conversation.id])
    assert [hit.id for hit in found.hits] == [ids[4]]
    before, after = found.turns[ids[4]]
    assert before is None  # "Morning all." asks nothing
    assert after is not None and after.content == contents[5]


async def test_hits_are_read_as_the_store_reads_them(store: Store) -> None:
    # On SQLite the statement runs on the driver, whose rows hold dates as stored text.
    ids = await _fill(store, ["the zebra lounge", "Did you see it?", "Yes."] * 20, tokens=20)
    conversation = await store.conversation(KEY)
    stored = {m.id: m for m in await store.messages(conversation.id)}
    found = await RecallQuery(store.engine).find(
        conversation, ["zebra", "lounge"], 5, (200, PER), [conversation.id]
    )
    assert found.hits and {hit.id for hit in found.hits} <= set(ids)
    for hit in [*found.hits, *(t for turns in found.turns.values() for t in turns if t)]:
        message = stored[hit.id]
        assert (hit.content, hit.author_name, hit.role, hit.tokens) == (
            message.content,
            message.author_name,
            message.role,
            message.tokens,
        )
        assert hit.created_at == message.created_at
        assert isinstance(hit.created_at, datetime)


async def test_recall_is_one_statement_that_statement_listeners_see(store: Store) -> None:
    # Counted as every statement is (bench/overhead.py), however it runs on either database.
    await _fill(store, [f"zebra note {n}" for n in range(40)], tokens=20)
    conversation = await store.conversation(KEY)
    query = RecallQuery(store.engine)
    await query.find(conversation, ["zebra"], 5, (200, PER), [conversation.id])  # sizes known
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    found = await query.find(conversation, ["zebra"], 5, (200, PER), [conversation.id])
    event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert len(found.hits) == 5
    assert len(statements) == 1 and statements[0].startswith("WITH recent AS")


async def test_every_conversation_runs_the_same_statement_text(store: Store) -> None:
    # SQLite's driver keeps prepared statements by their text (128 per connection): ids
    # written into the text made every conversation's recall a new one, prepared again (~3 ms
    # of the database thread's CPU, 1,000 conversations in the throughput bench).
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    query = RecallQuery(store.engine)
    found = []
    for name in ("one", "two"):
        conversation = await store.conversation(ConversationKey("test", "w", name))
        await store.add(conversation.id, NewMessage("user", "ann", "Ann", "zebra", 20))
        event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
        found.append(await query.find(conversation, ["zebra"], 5, (10, PER), [conversation.id]))
        event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert [len(f.hits) for f in found] == [1, 1]  # each its own message, below a tiny window
    assert len(statements) == 2 and statements[0] == statements[1]


async def test_a_failing_read_is_a_storage_error(store: Store) -> None:
    # Callers tell the person storage failed on SQLAlchemy's errors, whichever way it ran.
    await _fill(store, ["the zebra lounge"], tokens=20)
    conversation = await store.conversation(KEY)
    cascade = " CASCADE" if store.engine.dialect.name == "postgresql" else ""
    async with store.engine.begin() as connection:
        await connection.execute(text(f"DROP TABLE documents{cascade}"))
    with pytest.raises(SQLAlchemyError):
        await RecallQuery(store.engine).find(
            conversation, ["zebra"], 5, (200, PER), [conversation.id]
        )


def test_blank_is_what_rstrip_strips() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == BLANK


async def test_a_conversation_holding_most_rows_gets_its_own_best_matches(store: Store) -> None:
    # Another conversation's rows match better and sit among this one's: once the first read
    # found this conversation dense, the second ranks every match and keeps its own in order.
    mine = await store.conversation(KEY)
    other = await store.conversation(ConversationKey("test", "w", "elsewhere"))
    ids: list[int] = []
    for n in range(200):
        if n % 10 == 5:
            await store.add(other.id, NewMessage("user", "bo", "Bo", f"zebra yak {n}", 20))
        text = "zebra yak here" if n == 50 else f"zebra note {n}" if n % 7 == 0 else f"note {n}"
        ids.append(await store.add(mine.id, NewMessage("user", "ann", "Ann", text, 20)))
    # Both words, then the newest with one below the window (its 400 tokens: the newest 16).
    best = [ids[50], ids[182], ids[175], ids[168], ids[161]]
    query = RecallQuery(store.engine)
    for _ in range(2):
        found = await query.find(mine, ["zebra", "yak"], 5, (400, PER), [mine.id])
        assert [hit.id for hit in found.hits] == best
        assert {hit.conversation_id for hit in found.hits} == {mine.id}


async def test_a_dense_conversation_whose_best_matches_are_others_is_read_again(
    store: Store,
) -> None:
    # Another conversation's 30 rows match both words, this one's 200 one word: its best
    # matches are all the other's, so the first read, checking only the best 20 (4 x 5), finds
    # fewer than 5 of this one's and says so; the second checks every match.
    mine = await store.conversation(KEY)
    other = await store.conversation(ConversationKey("test", "w", "elsewhere"))
    ids: list[int] = []
    for n in range(200):
        if n % 5 == 0 and n < 150:
            await store.add(other.id, NewMessage("user", "bo", "Bo", f"zebra yak {n}", 20))
        text = f"zebra note {n}" if n % 3 == 0 else f"note {n}"
        ids.append(await store.add(mine.id, NewMessage("user", "ann", "Ann", text, 20)))
    # Below the window (400 tokens: the newest 16), the newest with "zebra".
    best = [i for n, i in enumerate(ids[:-16]) if n % 3 == 0][::-1][:5]
    query = RecallQuery(store.engine)
    await query.find(mine, ["zebra", "yak"], 5, (400, PER), [mine.id])  # finds it dense
    assert query.dense(mine.id)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    found = await query.find(mine, ["zebra", "yak"], 5, (400, PER), [mine.id])
    event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert [hit.id for hit in found.hits] == best
    # (PostgreSQL reads a conversation's own matches alone: one statement.)
    assert len(statements) == (2 if store.engine.dialect.name == "sqlite" else 1)


async def test_a_dense_conversations_period_is_read_through_the_time_index(store: Store) -> None:
    # One message an hour for ten days, another conversation's every tenth: the period's ids
    # are the same whichever index reads them, and a dense one's is read through the time
    # index (not every row of the conversation).
    mine, other = KEY, ConversationKey("test", "w", "elsewhere")
    begin = datetime(2026, 3, 1)
    await import_rows(
        store.engine,
        [
            ImportRow(
                other if n % 10 == 0 else mine,
                {"role": "user", "author_id": "ann", "author_name": "Ann", "content": f"note {n}"}
                | {"tokens": 4, "created_at": begin + timedelta(hours=n)},
            )
            for n in range(240)
        ],
    )
    conversation = await store.conversation(mine)
    stored = await store.messages(conversation.id)
    start, end = stored[60].created_at, stored[100].created_at  # as the database gives them
    inside = [m.id for m in stored if start < m.created_at <= end]
    expected = (inside[0] - 1, inside[-1] + 1)
    statements: list[tuple[str, Any]] = []

    def seen(*args: Any) -> None:
        statements.append((args[2], args[3]))  # the SQL and its parameters

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    surroundings = Surroundings(store.engine)
    assert await surroundings.period(conversation.id, start, end) == expected
    assert await surroundings.period(conversation.id, start, end, dense=True) == expected
    if store.engine.dialect.name == "sqlite":
        plans = []
        with sqlite3.connect(str(store.engine.url.database)) as connection:
            for sql, parameters in statements:
                plan = connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters).fetchall()
                plans.append(" ".join(str(step[-1]) for step in plan))
        assert "ix_messages_conversation_id_id" in plans[0]
        assert "ix_messages_created_at" in plans[1]


async def test_prepared_ahead_every_statement_recall_then_runs(sqlite_url: str) -> None:
    """On SQLite `prepare` leaves the statement of every number of words prepared on the
    pooled connection (SQLite's `sqlite_stmt` lists them), for conversations found dense or
    not, so no reply prepares one: each text recall then runs is among them."""
    async with migrated_engine(sqlite_url) as engine:
        store = Store(engine)
        await _fill(store, [f"zebra yak note {n}" for n in range(40)], tokens=20)
        conversation = await store.conversation(KEY)
        query = RecallQuery(engine)
        await query.prepare()
        async with linked(engine) as link:
            driver = cast("SqliteLink", link).driver
            prepared = {sql for (sql,) in await driver.execute_fetchall(_PREPARED)}
        ran: list[str] = []

        def seen(*args: Any) -> None:
            ran.append(args[2])

        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        for count in (1, 2, 7, MAX_TERMS):
            words = ["zebra", "yak", *(f"w{n}" for n in range(count - 2))][:count]
            fresh = RecallQuery(engine)  # the first find learns the conversation is dense,
            for _ in range(2):  # the second reads it so
                await fresh.find(conversation, words, 5, (200, PER), [conversation.id])
            assert fresh.dense(conversation.id)
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
        assert len(set(ran)) == 8  # a text per number of words, dense or not
        assert set(ran) <= prepared


async def test_prepare_does_nothing_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL plans at every execution: nothing to prepare, no statement run."""
    async with migrated_engine(postgres_url) as engine:
        ran: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: ran.append(a[2]))
        await RecallQuery(engine).prepare()
    assert ran == []


_PREPARED = "SELECT sql FROM sqlite_stmt"  # SQLite's statement table (ENABLE_STMTVTAB)
