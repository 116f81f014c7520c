"""Storage on a real SQLite file and the real PostgreSQL: migrations, dedup, reset, restart."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

import memory.store
from memory.db import create_engine, migrate
from memory.keys import ConversationKey
from memory.kinds import ChannelKind
from memory.store import NewMessage, Store
from tests.helpers import old_conversation

KEY = ConversationKey("test", "w", "c")


def message(content: str, platform_id: str | None = None, tokens: int = 5) -> NewMessage:
    return NewMessage("user", "u1", "Alice", content, tokens, platform_id)


async def test_migrations_create_the_schema_and_are_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    await migrate(engine)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = await connection.execute(text("SELECT version_num FROM alembic_version"))
    assert {"conversations", "messages", "alembic_version"} <= tables
    assert version.scalar_one()
    await engine.dispose()


async def test_history_survives_a_restart(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    store = Store(engine)
    conversation = await store.conversation(KEY)
    await store.add(conversation.id, message("hello", "m1"))
    await engine.dispose()

    engine = create_engine(database_url)  # a new engine: nothing cached in memory
    await migrate(engine)
    store = Store(engine)
    again = await store.conversation(KEY)
    assert again.id == conversation.id
    assert [m.content for m in await store.messages(again.id)] == ["hello"]
    await engine.dispose()


async def test_concurrent_first_messages_share_one_conversation(store: Store) -> None:
    states = await asyncio.gather(*(store.conversation(KEY) for _ in range(8)))
    assert len({s.id for s in states}) == 1


async def test_platform_ids_are_unique_per_conversation(store: Store) -> None:
    """A guard in the schema; re-deliveries are turned away before, by the inbound queue."""
    first = await store.conversation(KEY)
    second = await store.conversation(ConversationKey("test", "w", "c", thread="t1"))
    assert await store.add(first.id, message("a", "same-id"))
    assert await store.add(second.id, message("b", "same-id"))  # another conversation: fine
    with pytest.raises(IntegrityError):
        await store.add(first.id, message("a again", "same-id"))
    assert await store.add(first.id, message("no id")) and await store.add(
        first.id, message("no id")
    )
    assert len(await store.messages(first.id)) == 3


async def test_reset_and_persona(store: Store) -> None:
    conversation = await store.conversation(KEY)
    for i in range(3):
        await store.add(conversation.id, message(f"old {i}"))
    await store.reset(conversation.id)
    await store.set_persona(conversation.id, "terse")
    await store.add(conversation.id, message("new"))
    state = await store.conversation(KEY)
    assert state.persona == "terse"
    window = await store.window(state, 2**62, budget=1000, per_message=4)
    assert [m.content for m in window] == ["new"]
    assert (await store.usage(state)).messages == 1
    assert len(await store.messages(state.id)) == 4


async def test_listening_is_stored_per_channel_and_migrates_off(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine, "0004")
    await old_conversation(engine, ConversationKey("test", "w", "old"))
    await migrate(engine)
    store = Store(engine)
    assert not await store.listening(ConversationKey("test", "w", "old"))
    await store.set_listening(ConversationKey("test", "w", "c", thread="t1"), on=True)
    await engine.dispose()

    engine = create_engine(database_url)  # a new store: nothing cached
    store = Store(engine)
    assert await store.listening(KEY)
    assert await store.listening(ConversationKey("test", "w", "c", thread="t2"))
    assert not await store.listening(ConversationKey("test", "w", "other"))
    assert not await store.exists(ConversationKey("test", "w", "c", thread="t1"))
    await engine.dispose()


async def test_listen_switched_by_another_process_takes_effect_here(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = Store(engine), Store(engine)  # two processes sharing the database
    channel = ConversationKey("test", "w", "c")
    assert not await here.listening(channel)
    await there.set_listening(channel, on=True)
    assert not await here.listening(channel)  # remembered for a while, not asked each message
    monkeypatch.setattr(memory.store, "_LISTENING_TRUSTED", 0.0)
    await there.set_listening(channel, on=False)
    await here.set_listening(channel, on=True)
    assert await here.listening(channel)
    await there.set_listening(channel, on=False)
    assert not await here.listening(channel)


async def test_channel_kind_migrates_and_keeps_private_conversations_out_of_workspace_recall(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    await migrate(engine, "0005")
    dm_a = await old_conversation(engine, ConversationKey("discord", "dm", "111"))
    dm_b = await old_conversation(engine, ConversationKey("discord", "dm", "222"))
    slack_dm = await old_conversation(engine, ConversationKey("slack", "T1", "D9"))
    unknown = await old_conversation(engine, ConversationKey("slack", "T1", "C1"))
    await migrate(engine)
    store = Store(engine)
    # Each Discord DM is a workspace of its own now; its key says so.
    assert (await store.conversation(ConversationKey("discord", "dm-111", "111"))).id == dm_a
    assert await store.workspace_conversations(dm_a) == []
    assert dm_b not in await store.workspace_conversations(dm_a)
    public = await store.conversation(ConversationKey("slack", "T1", "C2"), ChannelKind.CHANNEL)
    private = await store.conversation(ConversationKey("slack", "T1", "G3"), ChannelKind.PRIVATE)
    # Not yet seen since the upgrade: unknown, so treated as private.
    assert await store.workspace_conversations(slack_dm) == [public.id]
    assert private.id not in await store.workspace_conversations(public.id)
    assert unknown not in await store.workspace_conversations(public.id)
    # Seen again with its kind (an unknown kind never overwrites a known one).
    await store.conversation(ConversationKey("slack", "T1", "C1"), ChannelKind.CHANNEL)
    await store.conversation(ConversationKey("slack", "T1", "C1"))
    assert unknown in await store.workspace_conversations(public.id)
    await engine.dispose()


async def test_a_window_read_tells_what_a_read_before_it_would_find(store: Store) -> None:
    """The earlier messages a window's read returned answer a second read before the window
    (the summary's) exactly, or say they cannot."""
    conversation = await store.conversation(KEY)
    ids = [await store.add(conversation.id, message(f"m{n}", tokens=3 + n % 7)) for n in range(120)]
    state = await store.conversation(KEY)
    told = 0
    for budget, floor in [(60, 0), (200, 0), (200, ids[100]), (20_000, 0), (400, ids[110])]:
        read = await store.window_read(state, ids[-1], budget, 4, floor=floor)
        assert read.messages() == await store.window(
            replace(state, reset_after=max(floor, state.reset_after)), ids[-1], budget, 4
        )
        # Dates as SQLAlchemy gives them, though the read keeps them as stored until asked.
        assert all(isinstance(m.created_at, datetime) for m in read.messages())
        start = read.messages()[0].id if read.messages() else ids[-1]
        for after, batch in [(0, 100), (ids[40], 100), (ids[90], 1000), (0, 10_000)]:
            found = read.earlier.fitting(after, batch, 4)
            if found is not None:
                expected = await store.window(replace(state, reset_after=after), start, batch, 4)
                assert found == expected
                told += 1
    assert told >= 12, told


async def test_a_window_read_is_sized_from_the_conversations_messages(store: Store) -> None:
    """The first read guesses the messages' size; later ones ask for about as many rows as the
    window holds, a quarter more (not a fixed batch), in one statement."""
    conversation = await store.conversation(KEY)
    ids = [await store.add(conversation.id, message(f"m{n}", tokens=20)) for n in range(600)]
    asked: list[int] = []

    def batch(*args: Any) -> None:
        # By name: the execution context's, or (read by the driver directly) the parameters.
        named = args[4].compiled_parameters[0] if args[4] is not None else args[3]
        if "batch" in named:
            asked.append(named["batch"])

    event.listen(store.engine.sync_engine, "before_cursor_execute", batch)
    reads = [await store.window_read(conversation, ids[-1] + 1, 4000, 4) for _ in range(2)]
    event.remove(store.engine.sync_engine, "before_cursor_execute", batch)
    fitting = 4000 // 24
    assert [len(read.messages()) for read in reads] == [fitting, fitting]
    assert reads[0].messages() == reads[1].messages()
    assert len(asked) == 2  # one statement each
    assert asked[1] < asked[0] and fitting < asked[1] <= fitting * 1.25 + 1


def _write_past_sqlalchemy(connection: Connection) -> None:
    # Outside SQLAlchemy's own transaction: only the pool's reset can end it.
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    dbapi.cursor().execute("UPDATE conversations SET persona = 'left open'")


async def test_a_connection_returned_in_a_transaction_is_rolled_back(sqlite_url: str) -> None:
    """Rollbacks with no transaction open are skipped (a round trip through aiosqlite each);
    a connection returned with one open is still rolled back."""
    engine = create_engine(sqlite_url)
    await migrate(engine)
    store = Store(engine)
    conversation = await store.conversation(KEY)
    async with engine.connect() as connection:
        await connection.run_sync(_write_past_sqlalchemy)
    assert (await store.conversation(KEY)).persona is None
    await store.set_persona(conversation.id, "terse")  # the database is not left locked
    assert (await store.conversation(KEY)).persona == "terse"
    await engine.dispose()
