"""Private files on disk: the data directory 0700, the SQLite database with its -wal/-shm and
exports 0600, whatever the umask (through the real CLI and store)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import SettingsFactory
from tests.helpers import ask, parley_on


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)  # everything world-readable unless Parley says otherwise
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cli_creates_private_data_dir_database_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    data = tmp_path / "state" / "parley"
    monkeypatch.setenv("PARLEY_DATA_DIR", str(data))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps(
            {
                "conversation": "terminal/local/n",
                "author": "Ann",
                "role": "user",
                "content": "my secret",
                "time": "2026-02-01T09:00:00Z",
            }
        )
    )
    runner = CliRunner()
    assert runner.invoke(app, ["memory", "import", str(source)]).exit_code == 0

    export = tmp_path / "export.jsonl"
    export.write_text("old")
    export.chmod(0o644)  # an existing file is made private too
    result = runner.invoke(app, ["memory", "export", "-c", "n", "-o", str(export)])
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "fresh.md"
    result = runner.invoke(
        app, ["memory", "export", "-c", "n", "--format", "markdown", "-o", str(fresh)]
    )
    assert result.exit_code == 0, result.output

    assert mode(data) == mode(data.parent) == 0o700
    assert mode(data / "parley.db") == 0o600
    assert mode(export) == mode(fresh) == 0o600 and "my secret" in export.read_text()
    result = runner.invoke(app, ["memory", "export", "-c", "n", "-o", str(tmp_path / "no" / "x")])
    assert result.exit_code == 1 and "Can't write" in result.output


async def test_sqlite_wal_and_shm_are_private(
    tmp_path: Path, make_settings: SettingsFactory, open_umask: None
) -> None:
    database = tmp_path / "db" / "parley.db"
    async with parley_on(make_settings, f"sqlite+aiosqlite:///{database}") as parley:
        await ask(parley, "hello")
        companions = [database.with_name("parley.db" + s) for s in ("-wal", "-shm")]
        assert all(path.exists() for path in companions)
        assert [mode(p) for p in (database.parent, database, *companions)] == [
            0o700,
            0o600,
            0o600,
            0o600,
        ]
