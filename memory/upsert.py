"""An INSERT that updates the existing row on a key conflict, in the engine's dialect (both
SQLite and PostgreSQL spell it `ON CONFLICT … DO UPDATE`; SQLAlchemy builds it per dialect)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from memory.tables import Base

Updates = Callable[[ReadOnlyColumnCollection[str, Any]], Mapping[str, ColumnElement[Any]]]


def upsert(engine: AsyncEngine, table: type[Base], keys: Sequence[str], updates: Updates) -> Insert:
    """The statement inserting rows of `table`, or on a conflict of `keys` setting what
    `updates` makes of the proposed row (`excluded`). Build it once: each build makes a table
    alias that becomes cyclic garbage."""
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if engine.dialect.name == "postgresql" else sqlite.insert(table)
    )
    return insert.on_conflict_do_update(index_elements=keys, set_=updates(insert.excluded))
