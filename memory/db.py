"""Engine creation and schema migrations."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Insert, Select, bindparam, event, text
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.schema import ColumnDefault

from memory.files import private_database
from memory.schema_version import is_current
from memory.sqlite_turns import turns

if TYPE_CHECKING:
    import aiosqlite
    from alembic.config import Config

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock held while migrating (any constant unique to Parley).
_MIGRATING = 0x7061726C6579  # "parley"
# Seconds a task may queue for a connection before giving up (a storage error): a burst of
# replies waits its turn rather than failing after SQLAlchemy's default 30 s.
_QUEUE_WAIT = 120.0
# PostgreSQL connections per process: opened as load asks for them, then kept. Four processes
# (two Slack replicas, two Discord shards) stay within the server's default 100. None beyond
# the pool's size: SQLAlchemy closes an "overflow" connection at check-in whenever the pool
# already holds its size idle, so under load they were opened and closed all the time (1,569
# connections for 3,000 messages across 1,000 conversations: the server forked a backend and
# planned every statement again for each; 75 → 186 messages/s once kept).
_POOL_SIZE = 20
_POOL_OVERFLOW = 0
# A pooled PostgreSQL connection idle for this many seconds is pinged before use.
PING_IDLE = 5.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while a reply is written; busy_timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _rollback_if_open(dbapi_connection: Any) -> None:
    # aiosqlite takes every rollback to its thread and back, though SQLite itself skips one
    # with no transaction open: most (after a commit, after a read) have none.
    try:
        open_transaction = dbapi_connection.driver_connection.in_transaction
    except ValueError:  # aiosqlite's connection is closed: nothing to roll back
        return
    if open_transaction:
        dbapi_connection.rollback()


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite the file and its directory are made private (0600, 0700)
    and WAL is switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool: dict[str, Any] = {}  # in memory: one shared connection already
        if parsed.database and parsed.database != ":memory:":
            private_database(Path(parsed.database).expanduser())
            # One connection: SQLite allows one writer at a time anyway, and a write
            # transaction spans event-loop round trips (INSERT, then COMMIT), so under load
            # other connections waited out busy_timeout and failed with "database is locked".
            # Through one connection statements queue in order instead, and memory holds one
            # page cache and one thread.
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": _QUEUE_WAIT}
        engine = create_async_engine(url, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        engine.sync_engine.dialect.do_rollback = _rollback_if_open  # type: ignore[method-assign]
        return engine
    engine = create_async_engine(
        url, pool_size=_POOL_SIZE, max_overflow=_POOL_OVERFLOW, pool_timeout=_QUEUE_WAIT
    )
    _ping_when_idle(engine)
    return engine


@asynccontextmanager
async def alone(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one statement committed alone (a write that needs no other in its
    transaction): on PostgreSQL in autocommit, one round trip rather than BEGIN, the statement
    and COMMIT (a statement is atomic by itself); elsewhere committed on leaving."""
    if engine.dialect.name != "postgresql":
        async with engine.begin() as connection:
            yield connection
        return
    async with engine.connect() as connection:
        # Set on the connection: an engine with the option, made per statement, cost ~50 µs.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


@dataclass(frozen=True)
class SqliteLink:
    """SQLite's pooled driver connection, lent for statements the driver runs (`sqlite_rows`)
    without a SQLAlchemy `AsyncConnection` around it: that cost each checkout three greenlet
    switches, a task and two more loop iterations (78 against 45 µs of CPU per checkout alone,
    113 against 52 with 100 tasks queueing for the one connection, this machine)."""

    driver: aiosqlite.Connection
    dialect: Dialect
    engine: Engine  # whose `before_cursor_execute` listeners see the statements


def linked(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection | SqliteLink]:
    """A connection for statements that need no transaction of their own (reads, and writes
    `sqlite_rows` commits): on SQLite the pooled driver connection (`SqliteLink`), handed on
    to the next such statement under load (memory/sqlite_turns.py), elsewhere `alone`'s (on
    PostgreSQL in autocommit: a read spared its BEGIN and ROLLBACK round trips). A failed
    write's open transaction is rolled back by the pool."""
    if engine.dialect.name != "sqlite":
        return alone(engine)
    return _SqliteLinked(engine)


class _SqliteLinked:
    """`linked`'s block on SQLite (a class, as `Turn` is: every statement a reply makes)."""

    __slots__ = ("_engine", "_turn")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._turn = turns(engine.sync_engine).turn(engine.sync_engine.pool)

    async def __aenter__(self) -> SqliteLink:
        driver = await self._turn.__aenter__()
        return SqliteLink(driver, self._engine.dialect, self._engine.sync_engine)

    async def __aexit__(self, *raised: object) -> None:
        await self._turn.__aexit__(*raised)


async def sqlite_rows(
    link: SqliteLink, sql: str, values: Mapping[str, Any], commit: bool = False
) -> list[tuple[Any, ...]]:
    """The rows of a statement on SQLite (`sql` with `:name` parameters), run by the driver in
    one trip to aiosqlite's thread. Through SQLAlchemy a statement takes four trips (cursor,
    execute, fetch, close) and per-row result processing: ~0.45 ms of CPU on recall's
    statement, whose SQL takes ~1.3 ms. Values arrive as SQLite stores them (dates as text).
    Errors are raised as SQLAlchemy's, like every other statement's (callers tell the person
    storage failed), and the engine's `before_cursor_execute` listeners see the statement, with
    no connection or cursor (bench/overhead.py counts statements so). With `commit` the
    statement's transaction is committed in the same trip."""
    for listener in link.engine.dispatch.before_cursor_execute:
        listener(cast("Any", None), cast("Any", None), sql, dict(values), None, False)
    driver = link.driver
    try:
        if commit:
            # aiosqlite has no public call for a statement and its commit together: its queue
            # (as SQLAlchemy's aiosqlite dialect uses it) runs both in one trip to its thread,
            # not two (a trip: ~70 µs of CPU here, 3 of a reply's writes).
            queued = cast("Callable[..., Awaitable[list[tuple[Any, ...]]]]", driver._execute)
            return await queued(_committed, driver._conn, sql, values)
        rows = await driver.execute_fetchall(sql, values)
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, dict(values), error, sqlite3.Error) from error
    return cast("list[tuple[Any, ...]]", rows)


def _committed(
    connection: sqlite3.Connection, sql: str, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """In aiosqlite's thread: the statement's rows, its transaction committed."""
    rows = connection.execute(sql, values).fetchall()
    connection.commit()
    return rows


# Compiles statements for `sqlite_rows` (":name" parameters).
_NAMED_PARAMETERS = SQLiteDialect_pysqlite(paramstyle="named")


class Read:
    """A SELECT built once, read for its rows by position: on SQLite in one trip to the driver
    (`sqlite_rows`), each value made what SQLAlchemy makes of it (dates stored as text); elsewhere
    through SQLAlchemy. For the reads every message makes."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        compiled = statement.compile(dialect=_NAMED_PARAMETERS)
        self._sql = str(compiled)
        # Parameters the statement sets itself (SQLite's `OFFSET 0` after a LIMIT).
        self._own = {name: value for name, value in compiled.params.items() if value is not None}
        # SQLite's conversions by column position (known once a connection tells the dialect).
        self._conversions: list[tuple[int, Callable[[Any], Any]]] | None = None

    async def rows(
        self, connection: AsyncConnection | SqliteLink, values: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        rows = await self.stored_rows(connection, values)
        if not self._sqlite_conversions(connection.dialect):
            return rows
        convert = self.converter(connection.dialect)
        return [convert(row) for row in rows]

    async def stored_rows(
        self, connection: AsyncConnection | SqliteLink, values: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows with their values as the database gives them (on SQLite dates as text),
        for a caller that needs few of them as `rows` gives them (`converter`)."""
        if isinstance(connection, SqliteLink):
            return await sqlite_rows(connection, self._sql, {**self._own, **values})
        result = await connection.execute(self.statement, values)
        return cast("Sequence[Sequence[Any]]", result.all())

    def converter(self, dialect: Dialect) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
        """Makes a row of `stored_rows` what `rows` gives."""
        conversions = self._sqlite_conversions(dialect)

        def convert(row: Sequence[Any]) -> tuple[Any, ...]:
            values = list(row)
            for index, conversion in conversions:
                values[index] = conversion(values[index])
            return tuple(values)

        return convert

    def _sqlite_conversions(self, dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
        if dialect.name != "sqlite":
            return []
        if self._conversions is None:
            self._conversions = [
                (index, convert)
                for index, column in enumerate(self.statement.selected_columns)
                if (convert := column.type.dialect_impl(dialect).result_processor(dialect, None))
            ]
        return self._conversions


class Write:
    """A one-statement write built once and committed alone, returning its RETURNING rows: on
    SQLite by the driver in one trip (the statement and its commit), not about six through
    SQLAlchemy's cursor, result and transaction; elsewhere through SQLAlchemy. The values give
    `columns`; a column with a Python-side default that they leave out gets it, as SQLAlchemy
    gives it (the driver knows nothing of those defaults)."""

    def __init__(self, statement: Insert, columns: Sequence[str]) -> None:
        self._defaults = {
            column.name: column.default
            for column in statement.table.c
            if isinstance(column.default, ColumnDefault)
            and (column.default.is_scalar or column.default.is_callable)
        }
        self._columns = (*columns, *(name for name in self._defaults if name not in columns))
        self.statement = statement.values({name: bindparam(name) for name in self._columns})
        self._sql = str(self.statement.compile(dialect=_NAMED_PARAMETERS))
        # SQLite's conversions of values by column (dates to text), made on first use.
        self._conversions: list[tuple[str, Callable[[Any], Any]]] | None = None

    async def run(self, engine: AsyncEngine, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        dialect = engine.dialect
        missing = self._defaults.keys() - values.keys()
        values = {**values, **{name: _value(self._defaults[name]) for name in missing}}
        if dialect.name != "sqlite":
            async with alone(engine) as connection:
                result = await connection.execute(self.statement, values)
                return cast("Sequence[Sequence[Any]]", result.all() if result.returns_rows else [])
        if self._conversions is None:
            table = self.statement.table
            self._conversions = [
                (name, convert)
                for name in self._columns
                if (convert := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            ]
        sent = dict(values)
        for name, conversion in self._conversions:
            sent[name] = conversion(sent[name])
        async with linked(engine) as link:
            return await sqlite_rows(cast("SqliteLink", link), self._sql, sent, commit=True)


def _value(default: ColumnDefault) -> Any:
    # SQLAlchemy wraps a callable default to take the execution context: ours ignore it.
    return default.arg(None) if default.is_callable else default.arg


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use when it has been idle for PING_IDLE seconds, so a
    database restart or an idle timeout costs a reconnect rather than a failed reply.

    `pool_pre_ping` pinged on every checkout: a round trip before each of a reply's statements
    (~0.4 ms of CPU each here). Connections in steady use are not pinged; one the server dropped
    while it was busy fails its statement (a storage error, told to the person) and is replaced.
    """
    dialect = engine.sync_engine.dialect

    def checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # none yet: a fresh connection
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool discards the connection and checks out another (a fresh one).
            raise DisconnectionError("an idle pooled connection was closed") from error

    event.listen(engine.sync_engine.pool, "checkin", checked_in)
    event.listen(engine.sync_engine.pool, "checkout", checked_out)


def _alembic_config() -> Config:
    # Alembic is imported only to migrate or report (see memory.schema_version).
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an up-to-date schema, disposed of on exit (for one-off commands)."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to date (or to `revision`); history is never dropped by an upgrade.

    On PostgreSQL processes starting at once (replicas) take turns: the first migrates, the
    others then find the schema current."""
    if revision == "head" and await is_current(engine):
        return
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await connection.execute(lock, {"key": _MIGRATING})
        await connection.run_sync(_upgrade, revision)


@dataclass(frozen=True)
class SchemaStatus:
    current: tuple[str, ...]  # revisions the database is at (empty: no schema yet)
    heads: tuple[str, ...]  # revisions this code's migrations end at
    pending: int  # migrations an upgrade would apply
    unknown: tuple[str, ...]  # current revisions this code has no migration for


def _status(connection: Connection) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    unknown = tuple(revision for revision in current if revision not in known)
    applied: set[str] = set()
    if not unknown:
        for revision in script.iterate_revisions(current, "base"):
            applied.add(revision.revision)
    return SchemaStatus(current, tuple(script.get_heads()), len(known - applied), unknown)


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    """Where the database's schema stands against this code's migrations (read-only)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_status)
