"""A new self-hoster's first run, through the real `parley` command in a subprocess: broken
paths fixed, and every listed mistake answered in one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import API_PREFIX, FakeDiscord
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.process import Finished, parley_env, run_parley

__all__ = ["fake_discord"]


def base_env(tmp_path: Path, **values: str) -> dict[str, str]:
    return parley_env(
        **{"OPENAI_API_KEY": "sk-test", "PARLEY_DATA_DIR": str(tmp_path / "data"), **values}
    )


def one_line(result: Finished) -> str:
    """The single line a failed command printed (no traceback, no log lines)."""
    assert result.code != 0, result.stdout
    text = result.stderr.strip()
    assert "\n" not in text and "Traceback" not in text, text
    return text


async def test_discord_sync_registers_the_commands_and_names_them(
    tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    env = base_env(
        tmp_path,
        DISCORD_TOKEN="fake-token",
        PARLEY_DISCORD_API_URL=fake_discord.base_url + API_PREFIX,
    )
    result = await run_parley("discord", "sync", env=env)
    assert result.code == 0, result.stderr
    assert len(fake_discord.command_syncs) == 1
    registered = {command["name"] for command in fake_discord.command_syncs[0].commands}
    assert {"help", "ask", "reset", "forget"} <= registered
    assert all(f"/{name}" in result.stdout for name in registered)
    assert result.stderr == ""  # no log lines


async def test_discord_sync_without_token_or_discord(tmp_path: Path) -> None:
    line = one_line(await run_parley("discord", "sync", env=base_env(tmp_path)))
    assert "DISCORD_TOKEN" in line
    unreachable = base_env(
        tmp_path, DISCORD_TOKEN="t", PARLEY_DISCORD_API_URL="http://127.0.0.1:9/api/v10"
    )
    assert "Can't reach Discord" in one_line(await run_parley("discord", "sync", env=unreachable))


async def test_platform_unreachable_at_start_is_one_line(tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    result = await run_parley("run", env=env)
    # `parley run` logs (it is a server); the failure is its last line, without a traceback.
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "Can't reach Slack" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PARLEY_DATABASE_URL", "not a url", "PARLEY_DATABASE_URL is not a database URL"),
        ("PARLEY_DATABASE_URL", "postgresql://u:secret@db/parley", "postgresql+asyncpg://u:***@"),
        ("PARLEY_DATABASE_URL", "mysql+aiomysql://db/x", "does not support"),
        ("PARLEY_DATA_DIR", "/proc/self/no/such", "PARLEY_DATA_DIR: cannot create"),
        ("PARLEY_DATA_DIR", "/proc/1", "read-only"),
        ("OPENAI_BASE_URL", "", "OPENAI_BASE_URL is set but empty"),
        ("PARLEY_MAX_REPLY_TOKENS", "999999", "PARLEY_MAX_REPLY_TOKENS (999999)"),
    ],
)
async def test_mistakes_are_one_line(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = await run_parley("chat", env=base_env(tmp_path, **{variable: value}), stdin="hi\n")
    line = one_line(result)
    assert expected in line and "secret" not in line


@pytest.mark.parametrize(
    "command",
    [("db", "upgrade"), ("memory", "export"), ("memory", "add-file", "x.txt"), ("healthcheck",)],
)
async def test_every_subcommand_says_it_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = base_env(tmp_path, PARLEY_DATABASE_URL="postgresql://db/parley")
    assert "postgresql+asyncpg://db/parley" in one_line(await run_parley(*command, env=env))


async def test_doctor_names_the_real_cause(tmp_path: Path) -> None:
    result = await run_parley("doctor", env=base_env(tmp_path, PARLEY_DATA_DIR="/proc/1"))
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "[FAIL] configuration" in result.stdout and "read-only" in result.stdout


async def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    toml = tmp_path / "parley.toml"
    toml.write_text('model = "a"\nmax_reply_tokens = \n', encoding="utf-8")
    line = one_line(await run_parley("chat", env=base_env(tmp_path, PARLEY_CONFIG=str(toml))))
    assert str(toml) in line and "line 2" in line
    doctor = await run_parley("doctor", env=base_env(tmp_path, PARLEY_CONFIG=str(toml)))
    assert doctor.code == 1 and "line 2" in doctor.stdout and "Traceback" not in doctor.stderr


async def test_unknown_names_are_warned_with_the_closest(tmp_path: Path) -> None:
    toml = tmp_path / "parley.toml"
    toml.write_text('modle = "x"\n', encoding="utf-8")
    env = base_env(tmp_path, PARLEY_CONFIG=str(toml), PARLEY_MAX_REPLY_TOKEN="5")
    result = await run_parley("db", "upgrade", env=env)
    assert result.code == 0, result.stderr
    assert "PARLEY_MAX_REPLY_TOKEN is not a Parley setting" in result.stderr
    assert "Did you mean PARLEY_MAX_REPLY_TOKENS?" in result.stderr
    assert (
        "modle is not a Parley setting" in result.stderr and "Did you mean model?" in result.stderr
    )
    assert "alembic" not in result.stderr  # library log lines stay out of the terminal


async def test_configuration_is_found_from_any_directory(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    xdg, elsewhere = tmp_path / "xdg", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = parley_env(XDG_CONFIG_HOME=str(xdg), PARLEY_DATA_DIR=str(tmp_path / "data"))
    del env["PARLEY_CONFIG"]
    init = await run_parley("init", "--no-ask", "--dir", str(xdg / "parley"), env=env)
    assert init.code == 0 and str(xdg / "parley" / "parley.toml") in init.stdout
    assert "any directory" in init.stdout
    (xdg / "parley" / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\n", encoding="utf-8")
    (xdg / "parley" / "parley.toml").write_text(
        f'model = "from-user-config"\nopenai_base_url = "{fake_model.base_url}"\n',
        encoding="utf-8",
    )
    fake_model.script(Reply("Hi."))
    result = await run_parley("chat", env=env, cwd=elsewhere, stdin="hello\n")
    assert result.code == 0, result.stderr
    assert fake_model.requests[-1]["model"] == "from-user-config"
    doctor = await run_parley("doctor", env=env, cwd=elsewhere)
    assert str(xdg / "parley" / "parley.toml") in doctor.stdout
    assert str(xdg / "parley" / ".env") in doctor.stdout

    local = await run_parley("init", "--no-ask", env=env, cwd=elsewhere)
    assert f"PARLEY_CONFIG={elsewhere / 'parley.toml'}" in local.stdout


async def test_version_help_and_export_options(tmp_path: Path) -> None:
    version = await run_parley("--version", env=base_env(tmp_path))
    assert version.code == 0 and version.stdout.startswith("parley ")
    help_text = (await run_parley("init", "--help", env=base_env(tmp_path))).stdout
    assert "--force" in help_text and "<bool>" not in help_text
    wrong = await run_parley("memory", "export", "--format", "csv", env=base_env(tmp_path))
    assert wrong.code == 2 and "'jsonl', 'markdown'" in wrong.stderr
    both = await run_parley("memory", "export", "--all", "-c", "x", env=base_env(tmp_path))
    assert "--all" in one_line(both) and both.stdout == ""


async def test_scripted_chat_answers_commands_itself_and_fails_loudly(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    env = base_env(tmp_path, OPENAI_BASE_URL=fake_model.base_url, PARLEY_MODEL_RETRIES="0")
    fake_model.script(Reply("Fine."))
    script = "\n   \n/listen on\n/frobnicate\n/search cats\nhello\n"
    result = await run_parley("chat", env=env, stdin=script)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "/listen is for Discord and Slack channels" in lines[0]
    assert "Unknown command `/frobnicate`" in lines[1] and "PARLEY_SEARCH_PROVIDER" in lines[2]
    assert lines[3:] == ["Fine."] and len(fake_model.requests) == 1  # empty lines ignored

    fake_model.script(Fail(500, "boom"))
    failed = await run_parley("chat", env=env, stdin="again\n")
    assert failed.code == 1 and "internal error" in failed.stderr


async def test_cut_message_is_told_and_never_recalled_to_itself(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    env = base_env(tmp_path, OPENAI_BASE_URL=fake_model.base_url, PARLEY_CONTEXT_TOKENS="4000")
    env["PARLEY_MAX_REPLY_TOKENS"] = "200"
    fake_model.script(Reply("Noted."), Reply("Sure."))
    await run_parley("chat", env=env, stdin="zebra crossing facts please\n")
    long = "zebra " + " ".join(f"word{i}" for i in range(3000))
    result = await run_parley("chat", env=env, stdin=long + "\n")
    assert result.code == 0, result.stderr
    assert "too long for the model's context window" in result.stdout
    assert result.stdout.rstrip().endswith("Sure.")
    sent = "\n".join(str(m["content"]) for m in fake_model.requests[-1]["messages"])
    assert "zebra crossing facts" in sent  # recall still works for older messages
    assert "word2999" not in sent and sent.count("word10 ") <= 1  # the cut message, once


@pytest.mark.timeout(180)  # eight runs of the command
async def test_memory_import_and_add_file_never_duplicate(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    history = tmp_path / "history.jsonl"
    record = {"author": "Ann", "role": "user", "content": "hi", "time": "2026-02-01T09:00:00Z"}
    history.write_text(json.dumps(record) + "\n", encoding="utf-8")
    first = await run_parley("memory", "import", str(history), "-c", "notes", env=env)
    assert first.stdout.strip() == "Imported 1 message."  # singular
    again = await run_parley("memory", "import", str(history), "-c", "notes", env=env)
    assert (
        again.code == 0 and "Imported 0 messages; skipped 1 message already stored." in again.stdout
    )

    # Korean Windows text (CP949), and data files attachments accept too.
    notes = tmp_path / "메모.csv"
    notes.write_bytes("이름,장소\n열쇠,파란 화분 밑\n".encode("cp949"))
    added = await run_parley("memory", "add-file", str(notes), "-c", "notes", env=env)
    assert added.code == 0 and "(1 passage)" in added.stdout, added.stderr
    twice = await run_parley("memory", "add-file", str(notes), "-c", "notes", env=env)
    assert twice.code == 0 and "already stored" in twice.stdout
    exported = await run_parley("memory", "export", "-c", "notes", env=env)
    assert exported.stdout.count('"content"') == 1  # the import, once

    binary = tmp_path / "data.json"
    binary.write_bytes(bytes(range(256)) * 4)
    refused = await run_parley("memory", "add-file", str(binary), env=env)
    assert "UTF-8" in one_line(refused) and refused.code == 1
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG\r\n")
    assert "not a text" in one_line(await run_parley("memory", "add-file", str(picture), env=env))


async def test_doctor_in_korean_names_a_missing_v1(tmp_path: Path, fake_model: FakeModel) -> None:
    root = fake_model.base_url.removesuffix("/v1")
    env = base_env(tmp_path, OPENAI_BASE_URL=root, PARLEY_LOCALE="ko")
    result = await run_parley("doctor", env=env)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "[FAIL] 모델" in result.stdout and "[ ok ] 데이터베이스" in result.stdout
    assert f"OPENAI_BASE_URL={root}/v1" in result.stdout and "/v1 아래에서" in result.stdout
    assert "통과" in result.stdout  # the summary too


@pytest.mark.parametrize(
    ("url", "suggestion"),
    [
        ("postgres://u:pw@db/parley", "postgresql+asyncpg://u:***@db/parley"),
        ("postgresql+psycopg://db/parley", "postgresql+asyncpg://db/parley"),
        ("sqlite:///parley.db", "sqlite+aiosqlite:///parley.db"),
    ],
)
def test_every_driverless_url_gets_the_async_driver(url: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(openai_api_key="sk-test", database_url=url)
    assert str(caught.value).endswith(suggestion)
