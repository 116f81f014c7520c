"""Pooled PostgreSQL connections: pinged before use only after being idle, so a connection the
server closed meanwhile is replaced without failing a reply, and a busy one costs no ping. A
start on a current schema tells so without loading alembic. Reads straight through the SQLite
driver give what SQLAlchemy gives; a statement alone on PostgreSQL needs no transaction."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite
import pytest
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

import memory.db
from memory.db import Read, alone, create_engine, linked, migrated_engine
from memory.keys import ConversationKey
from memory.kinds import ChannelKind
from memory.schema_version import VERSIONS, heads, is_current
from memory.store import NewMessage, Store
from memory.tables import Conversation, Message
from tests.process import REPO

_PID = text("SELECT pg_backend_pid()")
KEY = ConversationKey("test", "w", "c")


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(_PID)).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = create_async_engine(url)
    async with admin.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await admin.dispose()


async def test_an_idle_connection_the_server_closed_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory.db, "PING_IDLE", 0.05)
    engine = create_engine(postgres_url)
    try:
        first = await _pid(engine)
        await _terminate(postgres_url, first)
        await asyncio.sleep(0.2)
        assert await _pid(engine) != first  # no error: pinged, found closed, replaced
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    dialect = engine.sync_engine.dialect
    pings: list[object] = []

    def ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(type(dialect).do_ping(dialect, dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", ping)
    monkeypatch.setattr(memory.db, "PING_IDLE", 60.0)
    try:
        for _ in range(5):
            await _pid(engine)
        assert pings == []
        # The trade-off: closed while in steady use, it fails one statement, then is replaced.
        first = await _pid(engine)
        await _terminate(postgres_url, first)
        with pytest.raises(DBAPIError):
            await _pid(engine)
        assert await _pid(engine) != first
        monkeypatch.setattr(memory.db, "PING_IDLE", 0.05)
        await asyncio.sleep(0.1)
        await _pid(engine)
        assert len(pings) == 1  # idle long enough: pinged once
    finally:
        await engine.dispose()


async def test_connections_opened_under_load_are_kept(postgres_url: str) -> None:
    """A burst of concurrent statements opens connections up to the pool's size, and the next
    burst reuses them rather than opening and closing more (each a server process)."""
    engine = create_engine(postgres_url)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_args: opened.append(1))
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    size = pool.size()

    async def statement() -> None:
        async with linked(engine) as connection:
            assert isinstance(connection, AsyncConnection)
            await connection.execute(text("SELECT pg_sleep(0.01)"))

    try:
        await asyncio.gather(*(statement() for _ in range(size * 5)))
        first = len(opened)
        assert 1 < first <= size
        for _ in range(3):
            await asyncio.gather(*(statement() for _ in range(size * 5)))
        assert len(opened) == first
    finally:
        await engine.dispose()


def test_the_heads_read_from_the_files_are_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    assert heads() == frozenset(ScriptDirectory.from_config(config).get_heads())


async def test_a_start_on_a_current_database_does_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    script = (
        "import asyncio, sys\n"
        "from memory.db import migrated_engine\n"
        "async def main():\n"
        f"    async with migrated_engine({url!r}):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print(any(name.split('.')[0] == 'alembic' for name in sys.modules))\n"
    )

    def start() -> str:
        run = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
        )
        return run.stdout.strip()

    assert start() == "True"  # a new database: migrated
    assert start() == "False"  # current: only compared
    engine = create_engine(url)
    try:
        assert await is_current(engine)
    finally:
        await engine.dispose()


async def test_reads_on_postgresql_open_no_transaction(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    clock = text("SELECT now()")  # a transaction's start: the same for all its statements
    try:
        async with linked(engine) as connection:
            assert isinstance(connection, AsyncConnection)
            first = (await connection.execute(clock)).scalar_one()
            await asyncio.sleep(0.05)
            assert (await connection.execute(clock)).scalar_one() > first  # each its own
        async with engine.connect() as connection:  # writes keep their transactions
            first = (await connection.execute(clock)).scalar_one()
            await asyncio.sleep(0.05)
            assert (await connection.execute(clock)).scalar_one() == first
    finally:
        await engine.dispose()


async def test_a_write_alone_on_postgresql_is_committed_as_it_runs(postgres_url: str) -> None:
    """`alone`: no BEGIN and COMMIT around one statement (two round trips less): another
    connection sees its row before the block ends."""
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE marks (n integer)"))
        async with alone(engine) as connection, engine.connect() as other:
            await connection.execute(text("INSERT INTO marks VALUES (1)"))
            assert (await other.execute(text("SELECT count(*) FROM marks"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_read_gives_the_values_sqlalchemy_gives(engine: AsyncEngine) -> None:
    """`Read` on SQLite goes to the driver directly: dates and nulls come back as
    SQLAlchemy makes them, a statement's own parameters (a LIMIT's OFFSET) included."""
    store = Store(engine)
    conversation = await store.conversation(KEY, ChannelKind.DM)
    for n in range(3):
        await store.add(conversation.id, NewMessage("user", "u1", "Alice", f"m{n}", 2))
    statement = (
        select(Message.id, Message.content, Message.created_at, Conversation.kind)
        .join(Conversation)
        .order_by(Message.id.desc())
        .limit(bindparam("n"))
    )
    async with linked(engine) as link:
        fast = await Read(statement).rows(link, {"n": 2})
    async with engine.connect() as connection:
        plain = (await connection.execute(statement, {"n": 2})).all()
    assert [tuple(row) for row in fast] == [tuple(row) for row in plain]
    assert isinstance(fast[0][2], datetime) and fast[0][3] == ChannelKind.DM


async def test_a_write_is_committed_and_a_failed_one_leaves_the_connection_usable(
    engine: AsyncEngine, database_url: str
) -> None:
    """`Write` (a message stored alone) on SQLite commits through the driver: another engine
    sees the row. A failing one raises SQLAlchemy's error and leaves no transaction open."""
    store = Store(engine)
    conversation = await store.conversation(KEY)
    stored = await store.add(conversation.id, NewMessage("user", "u1", "Alice", "kept", 2))
    with pytest.raises(IntegrityError):  # no such conversation
        await store.add(10**9, NewMessage("user", "u1", "Alice", "orphan", 2))
    after = await store.add(conversation.id, NewMessage("user", "u1", "Alice", "after", 2))
    other = create_engine(database_url)
    try:
        async with other.connect() as connection:
            rows = (await connection.execute(select(Message.id, Message.content))).all()
            assert sorted(rows) == [(stored, "kept"), (after, "after")]
            # A column left out gets its Python-side default (the driver has none).
            when = await connection.scalar(select(Message.created_at).where(Message.id == stored))
    finally:
        await other.dispose()
    assert when is not None and abs(when.replace(tzinfo=UTC) - datetime.now(UTC)).seconds < 60


async def test_a_write_and_its_commit_take_one_trip_to_the_driver_thread(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a stored message is one call queued to aiosqlite's thread (statement and
    commit together), and it is committed: another engine sees it at once."""
    trips: list[object] = []
    queue = cast("Callable[..., Awaitable[Any]]", aiosqlite.Connection._execute)

    async def counted(self: aiosqlite.Connection, function: Any, *args: Any) -> Any:
        trips.append(function)
        return await queue(self, function, *args)

    async with migrated_engine(sqlite_url) as engine:
        store = Store(engine)
        conversation = await store.conversation(KEY)
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        stored = await store.add(conversation.id, NewMessage("user", "u1", "Alice", "once", 2))
        monkeypatch.undo()
    assert len(trips) == 1
    async with migrated_engine(sqlite_url) as other, other.connect() as connection:
        content = await connection.scalar(select(Message.content).where(Message.id == stored))
    assert content == "once"
