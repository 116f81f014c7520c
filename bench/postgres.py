"""PostgreSQL databases for the benchmarks (`parley_bench_*`), on the server named by
$PARLEY_BENCH_POSTGRES_URL (default: the test server, postgresql://postgres@127.0.0.1:5432/test).

A history fixture is filled with COPY and its word index (`message_words`'s primary key) built
after the rows, then vacuumed, as autovacuum would have done by then (recall's index-only scans
read the heap of pages not marked all-visible); it is kept between runs (a `bench_ready` table
marks a finished build) and `fixtures.reset` removes what a run added.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import asyncpg

from bench.fixtures import KEY, SCHEMA, SUMMARY, history
from memory.db import create_engine, migrate
from memory.fulltext_schema import ADD_WORDS_KEY, WORDS_KEY

ADMIN_URL = os.environ.get(
    "PARLEY_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _dsn(database: str) -> str:
    base = ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    return f"{base.rsplit('/', 1)[0]}/{database}"


def url(database: str) -> str:
    return _dsn(database).replace("postgresql://", "postgresql+asyncpg://")


async def available() -> bool:
    try:
        connection = await asyncpg.connect(_dsn("postgres"), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def fresh(database: str) -> str:
    """An empty, migrated database (dropped first if it exists); returns its URL."""
    admin = await asyncpg.connect(_dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    engine = create_engine(url(database))
    await migrate(engine)
    await engine.dispose()
    return url(database)


async def fixture(size: int) -> str:
    """The URL of a database holding the history fixture of `size` messages."""
    database = f"parley_bench_{size}_{SCHEMA}"
    try:
        connection = await asyncpg.connect(_dsn(database))
        ready = await connection.fetchval("SELECT to_regclass('bench_ready') IS NOT NULL")
        await connection.close()
        if ready:
            return url(database)
    except asyncpg.InvalidCatalogNameError:
        pass
    await fresh(database)
    connection = await asyncpg.connect(_dsn(database))
    try:
        await _fill(connection, size)
    finally:
        await connection.close()
    return url(database)


async def _fill(connection: asyncpg.Connection, size: int) -> None:
    await connection.execute(f"ALTER TABLE message_words DROP CONSTRAINT {WORDS_KEY}")
    await connection.execute(
        "INSERT INTO conversations (platform, workspace, channel, thread, reset_after, "
        "listening, created_at) VALUES ($1, $2, $3, $4, 0, false, now())",
        KEY.platform,
        KEY.workspace,
        KEY.channel,
        KEY.thread,
    )
    columns = ["conversation_id", "role", "author_id", "author_name", "content", "tokens"]
    columns.append("created_at")
    for rows in history(size):  # a bench fixture: blocking here is fine
        await connection.copy_records_to_table(
            "messages", records=[(1, *row) for row in rows], columns=columns
        )
    await connection.execute(ADD_WORDS_KEY)
    await connection.execute(
        "INSERT INTO summaries (conversation_id, content, covers_until, updated_at) "
        "VALUES (1, $1, $2, $3)",
        SUMMARY,
        max(size - 150, 1),
        datetime.now(UTC),
    )
    await connection.execute("VACUUM ANALYZE")
    await connection.execute("CREATE TABLE bench_ready ()")
