"""Shared fixtures: the fake model server, databases (SQLite file and real PostgreSQL), and a
ready Parley core wired to both."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core import Parley
from bot.logs import OWN_LOGGERS
from bot.plugins import discover
from bot.runtime import open_parley
from bot.settings import Settings
from bot.texts import use_locale
from memory.db import migrated_engine
from memory.store import Store
from tests.fakes.model_server import FakeModel
from tests.fakes.search_server import fake_search  # noqa: F401  (a fixture)

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")
_OUR_VARS = ("PARLEY_", "OPENAI_", "DISCORD_", "SLACK_", "TAVILY_", "BRAVE_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's own configuration."""
    for name in list(os.environ):
        if name.startswith(_OUR_VARS) and name != "PARLEY_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PARLEY_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def logging_as_found() -> Iterator[None]:
    """Logging as it was before the test: a command run in-process configures it for the
    process (bot/logs.py: the root's handler on that test's captured stderr, Parley's loggers
    at WARNING for the terminal chat), which later tests on the same worker would inherit:
    their INFO records dropped, and writes to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    own = {name: logging.getLogger(name).level for name in OWN_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, found in own.items():
        logging.getLogger(name).setLevel(found)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Every test starts in English, whatever locale an earlier one loaded (the locale is
    process-wide)."""
    use_locale("en")
    yield
    use_locale("en")


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    async with FakeModel() as model:
        yield model


async def _create_postgres_database() -> str:
    assert POSTGRES_URL
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    assert POSTGRES_URL
    name = make_url(url).database
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@asynccontextmanager
async def own_postgres_database() -> AsyncIterator[str]:
    """A database of its own on the real PostgreSQL, dropped after (skips without one)."""
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL tests need PARLEY_TEST_POSTGRES_URL "
            "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, then the real PostgreSQL on this machine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
        return
    async with own_postgres_database() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A database of its own on the real PostgreSQL (for several processes), dropped after."""
    async with own_postgres_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated fresh database (SQLite, then PostgreSQL)."""
    async with migrated_engine(database_url) as engine:
        yield engine


@pytest.fixture
def store(engine: AsyncEngine) -> Store:
    return Store(engine)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(fake_model: FakeModel, sqlite_url: str) -> SettingsFactory:
    """Settings pointing at the fake model and a fresh SQLite file; override any field."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openai_api_key": "sk-test",
            "openai_base_url": fake_model.base_url,
            "model": "gpt-4o-mini",
            "database_url": sqlite_url,
            "model_retries": 0,
            "request_timeout": 5.0,
        }
        values.update(overrides)
        # Adapters' fields go to their sections; the rest to the core's settings.
        sections = [plugin.section for plugin in discover()]
        own = {
            kind: {k: v for k, v in values.items() if k in kind.model_fields} for kind in sections
        }
        core = {k: v for k, v in values.items() if not any(k in fields for fields in own.values())}
        settings = Settings(_env_file=None, **core)  # type: ignore[call-arg, arg-type]
        return settings.attach(*(kind(_env_file=None, **own[kind]) for kind in sections))

    return make


@pytest.fixture
async def parley(make_settings: SettingsFactory) -> AsyncIterator[Parley]:
    async with open_parley(make_settings()) as core:
        yield core
