"""Mistakes in settings that would otherwise surface deep inside a library as a traceback:
each becomes one sentence naming the setting and the fix (a `ConfigError` in `load_settings`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.model_limits import known_window
from bot.texts import say
from memory.files import private_directory

if TYPE_CHECKING:
    from bot.settings import Settings

# Dialects Parley runs on, with the async driver each needs.
_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}
_DRIVER_ALIASES = {"postgres": "postgresql"}


def _database_problem(url_text: str) -> str | None:
    try:
        url = make_url(url_text)
    except ArgumentError:
        return say("check.db_url")
    backend = _DRIVER_ALIASES.get(url.get_backend_name(), url.get_backend_name())
    driver = _DRIVERS.get(backend)
    if driver is None:
        return say("check.db_backend", backend=backend)
    # From the URL itself: asking SQLAlchemy would load the dialect (and fail for postgres://).
    if url.drivername.partition("+")[2] != driver or not url.drivername.startswith(backend):
        fixed = url.set(drivername=f"{backend}+{driver}")
        return say("check.db_driver", suggestion=fixed.render_as_string(hide_password=True))
    return None


def _writable_dir(directory: Path, setting: str) -> str | None:
    """Create `directory` if needed; a sentence when it cannot be created or written."""
    try:
        private_directory(directory)  # 0700: it will hold the conversations
    except OSError as exc:
        return say("check.dir_create", setting=setting, path=directory, error=exc.strerror or exc)
    if not os.access(directory, os.W_OK | os.X_OK):
        return say("check.dir_readonly", setting=setting, path=directory)
    return None


def _sqlite_dir(url: URL, settings: Settings) -> str | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    setting = "PARLEY_DATABASE_URL" if settings.database_url else "PARLEY_DATA_DIR"
    return _writable_dir(Path(url.database).expanduser().parent, setting)


def _endpoint_problem(base_url: str) -> str | None:
    if not base_url.strip():
        return say("check.base_url_empty")
    if not base_url.startswith(("http://", "https://")):
        return say("check.base_url_scheme", url=base_url)
    return None


def _reply_tokens_problem(settings: Settings) -> str | None:
    # A window only the server knows is checked when it is discovered (`bot/window.py`).
    window = settings.context_tokens or known_window(settings.model)
    if window is not None and settings.max_reply_tokens >= window:
        return say("check.reply_tokens", tokens=settings.max_reply_tokens, window=window)
    return None


def settings_problem(settings: Settings) -> str | None:
    """The first mistake found, as one sentence, or None."""
    problem = _endpoint_problem(settings.openai_base_url) or _reply_tokens_problem(settings)
    if problem:
        return problem
    url_text = settings.resolved_database_url
    problem = _database_problem(url_text)
    return problem or _sqlite_dir(make_url(url_text), settings)
