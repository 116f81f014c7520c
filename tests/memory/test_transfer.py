"""Export and import: JSON Lines round-trips; a bad line names itself and imports nothing."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

import memory.transfer
from bot.cli import app
from bot.messages import ConversationKey, Inbound
from bot.texts import explain
from memory.export import export
from memory.tokens import TokenCounter
from memory.transfer import (
    Imported,
    InvalidImport,
    import_file,
    import_rows,
    parse_import,
)
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.fakes.pdf import make_pdf
from tests.helpers import ALICE, BOB, GENERAL, ask, parley_on


async def test_export_then_import_round_trips(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, BOB, '안녕하세요, "quoted" and\nmultiline'))
        await ask(parley, key=GENERAL, author=ALICE, text="What did Bob say?")
        engine = parley.store.engine
        exported = "".join([chunk async for chunk in export(engine, GENERAL, "jsonl")])
        lines = exported.splitlines()
        assert len(lines) == 3 and json.loads(lines[0])["conversation"] == str(GENERAL)

        target = ConversationKey("terminal", "local", "copy")
        rows = await asyncio.to_thread(parse_import, lines, target, parley.counter)
        assert await import_rows(engine, rows) == Imported(3, 0)
        assert await import_rows(engine, rows) == Imported(0, 3)  # twice: nothing doubled
        copied = "".join([chunk async for chunk in export(engine, target, "jsonl")])
        strip = [
            {k: v for k, v in json.loads(line).items() if k != "conversation"}
            for line in copied.splitlines()
        ]
        assert strip == [
            {k: v for k, v in json.loads(line).items() if k != "conversation"} for line in lines
        ]
        original = await parley.store.messages((await parley.store.conversation(GENERAL)).id)
        imported = await parley.store.messages((await parley.store.conversation(target)).id)
        assert [m.tokens for m in imported] == [m.tokens for m in original]

        markdown = "".join([chunk async for chunk in export(engine, None, "markdown")])
        assert f"# {GENERAL}" in markdown and "# terminal/local/copy" in markdown
        assert "**Bob**" in markdown


async def test_an_invalid_line_imports_nothing(
    make_settings: SettingsFactory, database_url: str
) -> None:
    good = json.dumps(
        {
            "conversation": "terminal/local/x",
            "author": "Ann",
            "role": "user",
            "content": "hello",
            "time": "2026-01-01T10:00:00+00:00",
        }
    )
    bad_role = good.replace('"user"', '"robot"')
    async with parley_on(make_settings, database_url) as parley:
        for bad, words in (
            (bad_role, "robot"),
            ("{not json", "JSON"),
            (good.replace('"author"', '"writer"'), '"author"'),
            (good.replace("2026-01-01T10", "yesterday"), "ISO 8601"),
        ):
            with pytest.raises(InvalidImport) as caught:
                parse_import([good, "", bad], None, parley.counter)
            assert caught.value.line == 3
            assert words in explain(caught.value)
        # A failure inside the transaction (here: a NOT NULL violation) leaves nothing behind.
        rows = parse_import([good, good], None, parley.counter)
        rows[1].values["content"] = None
        with pytest.raises(IntegrityError):
            await import_rows(parley.store.engine, rows)
        assert "".join([c async for c in export(parley.store.engine, None, "jsonl")]) == ""


async def test_a_streamed_import_stores_nothing_when_a_later_batch_is_bad(
    make_settings: SettingsFactory,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory.transfer, "_IMPORT_BATCH", 2)  # several batches from a few lines
    lines = [
        json.dumps(
            {
                "conversation": "terminal/local/s",
                "author": "Ann",
                "role": "user",
                "content": f"line {n} 안녕",
                "time": "2026-01-01T10:00:00+00:00",
            },
            ensure_ascii=False,
        )
        for n in range(5)
    ]
    source = tmp_path / "history.jsonl"
    async with parley_on(make_settings, database_url) as parley:
        engine = parley.store.engine
        source.write_text("\n".join([*lines, "", '{"author": 1}']), encoding="utf-8")
        interval, collecting = sys.getswitchinterval(), gc.isenabled()
        during: list[tuple[float, bool]] = []
        read = memory.transfer._read_batch

        def reading(*args: Any) -> Any:
            during.append((sys.getswitchinterval(), gc.isenabled()))
            return read(*args)

        monkeypatch.setattr(memory.transfer, "_read_batch", reading)
        with pytest.raises(InvalidImport) as caught:
            await import_file(engine, source, None, parley.counter)
        assert caught.value.line == 7
        # Tuned while importing (threads switch often, no collector), as it was after.
        assert set(during) == {(memory.transfer._SWITCH_INTERVAL, False)}
        assert (sys.getswitchinterval(), gc.isenabled()) == (interval, collecting)
        assert "".join([c async for c in export(engine, None, "jsonl")]) == ""

        source.write_text("\n".join(lines), encoding="utf-8")
        assert await import_file(engine, source, None, parley.counter) == Imported(5, 0)
        key = ConversationKey("terminal", "local", "s")
        stored = await parley.store.messages((await parley.store.conversation(key)).id)
        assert [m.content for m in stored] == [f"line {n} 안녕" for n in range(5)]
        assert [m.tokens for m in stored] == [
            parley.counter.count(f"[Ann] line {n} 안녕") for n in range(5)
        ]


async def test_a_batch_of_long_lines_ends_at_its_characters(
    make_settings: SettingsFactory,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pasted documents: a batch ends once its lines hold `_IMPORT_CHARS` characters (counted
    # every `_READ_LINES` lines), before `_IMPORT_BATCH` lines, so memory stays bounded.
    monkeypatch.setattr(memory.transfer, "_IMPORT_CHARS", 300)
    monkeypatch.setattr(memory.transfer, "_READ_LINES", 1)
    record = {"conversation": "terminal/local/s", "author": "Ann", "role": "user"}
    lines = [
        json.dumps({**record, "content": f"{'긴 글 ' * 60}{n}", "time": f"2026-01-01T10:00:0{n}Z"})
        for n in range(5)
    ]
    source = tmp_path / "history.jsonl"
    read = memory.transfer._read_batch
    sizes: list[int] = []

    def reading(*args: Any) -> Any:
        batch = read(*args)
        sizes.append(batch.lines)
        return batch

    monkeypatch.setattr(memory.transfer, "_read_batch", reading)
    async with parley_on(make_settings, database_url) as parley:
        source.write_text("\n".join([*lines, "", '{"author": 1}']), encoding="utf-8")
        with pytest.raises(InvalidImport) as caught:
            await import_file(parley.store.engine, source, None, parley.counter)
        assert caught.value.line == 7  # numbered across the batches
        sizes.clear()
        source.write_text("\n".join(lines), encoding="utf-8")
        assert await import_file(parley.store.engine, source, None, parley.counter) == Imported(
            5, 0
        )
        key = ConversationKey("terminal", "local", "s")
        stored = await parley.store.messages((await parley.store.conversation(key)).id)
    assert sizes == [1, 1, 1, 1, 1, 0]
    assert [m.content[-1] for m in stored] == ["0", "1", "2", "3", "4"]


def test_memory_cli_adds_files_exports_and_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("PARLEY_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    runner = CliRunner()
    source = tmp_path / "history.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(
                {
                    "conversation": "discord/g/c",
                    "author": name,
                    "role": "user",
                    "content": text,
                    "time": "2026-02-01T09:00:00Z",
                }
            )
            for name, text in (("Ann", "hi"), ("Bo", "yo"))
        )
    )
    result = runner.invoke(app, ["memory", "import", str(source), "--conversation", "notes"])
    assert result.exit_code == 0, result.output
    assert "Imported 2 messages." in result.output

    out = tmp_path / "notes.md"
    result = runner.invoke(
        app, ["memory", "export", "-c", "notes", "--format", "markdown", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "**Bo**" in out.read_text() and "# terminal/local/notes" in out.read_text()
    result = runner.invoke(app, ["memory", "export", "--all"])
    assert result.output.count('"conversation": "terminal/local/notes"') == 2

    source.write_text(source.read_text() + '\n{"author": 1}\n')
    result = runner.invoke(app, ["memory", "import", str(source)])
    assert result.exit_code == 1 and "Line 3" in result.output

    manual = tmp_path / "manual.pdf"
    manual.write_bytes(make_pdf(["The spare key is under the blue flowerpot."]))
    result = runner.invoke(app, ["memory", "add-file", str(manual), "-c", "notes"])
    assert result.exit_code == 0 and "manual.pdf" in result.output
    result = runner.invoke(app, ["memory", "add-file", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "Can't read" in result.output


def test_lines_in_other_forms_import_as_before() -> None:
    # msgspec decodes lines as `export` writes them; any other line takes the checks in Python.
    # Both ways give the same row.
    counter = TokenCounter("gpt-4o-mini")
    base = {"conversation": "terminal/local/x", "author": "Ann", "role": "user", "content": "hi"}
    variants = [
        {**base, "time": "2026-01-01T10:00:00+00:00"},
        {**base, "time": "2026-01-01T10:00:00.250000Z"},
        {**base, "time": "2026-01-01T12:00:00+02:00"},
        {**base, "time": "2026-01-01 10:00"},  # ISO 8601, not RFC 3339
        {**base, "time": "2026-01-01T10:00:00"},  # no zone: UTC
        {**base, "time": "2026-01-01T10:00:00Z", "author_id": None},
        {**base, "time": "2026-01-01T10:00:00Z", "author_id": 7},  # not text: the name
        {**base, "time": "2026-01-01T10:00:00Z", "author_id": ""},
        {**base, "time": "2026-01-01T10:00:00Z", "extra": [1, 2]},
    ]
    rows = parse_import([json.dumps(v) for v in variants], None, counter)
    slow = [memory.transfer._checked(n, json.dumps(v), None) for n, v in enumerate(variants)]
    for row, checked in zip(rows, slow, strict=True):
        assert row.key == checked.key
        assert {k: v for k, v in row.values.items() if k != "tokens"} == checked.values
    times = [row.values["created_at"] for row in rows]
    assert times[0] == times[2] == times[3] == times[4] == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert all(time.tzinfo is UTC for time in times)
    assert [row.values["author_id"] for row in rows[5:8]] == ["Ann", "Ann", ""]


def test_a_bad_line_is_named_whichever_way_it_is_read() -> None:
    counter = TokenCounter("gpt-4o-mini")
    good = {"author": "Ann", "role": "user", "content": "hi", "time": "2026-01-01T10:00:00Z"}
    for bad, reason in (
        ({**good}, "import.field"),  # no conversation and none given
        ({**good, "conversation": "nope"}, "import.conversation"),
        ({**good, "conversation": ""}, "import.conversation"),
        ({**good, "conversation": "a/b/c", "role": "system"}, "import.role"),
        ({**good, "conversation": "a/b/c", "time": "soon"}, "import.time"),
        ({**good, "conversation": "a/b/c", "content": None}, "import.field"),
        ([good], "import.not_object"),
    ):
        with pytest.raises(InvalidImport) as caught:
            parse_import(
                [json.dumps(good | {"conversation": "a/b/c"}), json.dumps(bad)], None, counter
            )
        assert caught.value.line == 2
        assert caught.value.reason == reason


def test_a_time_with_more_than_six_fractional_digits_reads_the_same_either_way() -> None:
    """Truncated to the microsecond as `fromisoformat` does (a re-import finds the stored row)."""
    line = (
        '{"conversation": "terminal/local/x", "author": "Alice", "role": "user", '
        '"content": "hi", "time": "2026-11-30T10:00:00.1234567+00:00"}'
    )
    [row] = parse_import([line], None, TokenCounter("gpt-4o-mini"))
    assert row.values["created_at"].microsecond == 123456
