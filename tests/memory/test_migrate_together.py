"""Replicas starting at once on a fresh PostgreSQL database both migrate it: they take turns
(an advisory lock), so neither fails on the other's half-created tables."""

from __future__ import annotations

import asyncio

import pytest

from memory.db import create_engine, migrate, schema_status


async def test_processes_starting_at_once_migrate_in_turn(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("one SQLite file has one process")
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        status = await schema_status(engines[0])
        assert status.pending == 0 and status.current == status.heads
    finally:
        for engine in engines:
            await engine.dispose()
