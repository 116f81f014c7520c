"""The `parley` command line and the terminal adapter, in real subprocesses."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.process import Finished, parley_env, run_parley


async def parley_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Finished:
    return await run_parley(*args, env=parley_env(**(env or {})), stdin=stdin)


def chat_env(fake_model: FakeModel, tmp_path: Path) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_model.base_url,
        "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "PARLEY_MODEL_RETRIES": "0",
    }


async def test_help_lists_the_commands() -> None:
    result = await parley_cli("--help")
    assert result.code == 0
    for command in ("chat", "run", "db"):
        assert command in result.stdout


async def test_missing_api_key_stops_with_one_line() -> None:
    result = await parley_cli("chat", stdin="hello\n")
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and "OPENAI_API_KEY" in result.stderr


async def test_bad_setting_names_the_variable(fake_model: FakeModel, tmp_path: Path) -> None:
    env = {**chat_env(fake_model, tmp_path), "PARLEY_CONTEXT_TOKENS": "lots"}
    result = await parley_cli("chat", stdin="hello\n", env=env)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and "PARLEY_CONTEXT_TOKENS" in result.stderr


async def test_scripted_chat_remembers_across_runs(fake_model: FakeModel, tmp_path: Path) -> None:
    env = chat_env(fake_model, tmp_path)
    fake_model.script(Reply("Nice to meet you, Ada."), Reply("Noted."))
    first = await parley_cli(
        "chat",
        "--conversation",
        "work",
        stdin="My name is Ada.\n\nRemember the launch is Friday.\n",
        env=env,
    )
    assert first.code == 0, first.stderr
    assert first.stdout.splitlines() == ["Nice to meet you, Ada.", "Noted."]

    fake_model.script(Reply("You are Ada."))
    second = await parley_cli("chat", "--conversation", "work", stdin="Who am I?\n", env=env)
    assert second.stdout.strip() == "You are Ada."
    contents = [m["content"] for m in fake_model.requests[-1]["messages"]]
    assert contents[1].endswith("My name is Ada.") and contents[-1].endswith("Who am I?")
    assert len(contents) == 6  # system + 4 remembered + the new question

    other = await parley_cli("chat", "--conversation", "home", stdin="hi\n", env=env)
    assert other.code == 0
    assert len(fake_model.requests[-1]["messages"]) == 2  # a different conversation


async def test_failures_are_explained_without_traceback(
    fake_model: FakeModel, tmp_path: Path
) -> None:
    env = {**chat_env(fake_model, tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    result = await parley_cli("chat", stdin="hello\n/memory\n", env=env)
    assert result.code == 1  # a reply failed: a script must see it
    assert "can't reach the model endpoint" in result.stderr and "Traceback" not in result.stderr
    assert "Stored since the last reset: 1 message " in result.stdout  # the question was kept

    fake_model.script(Fail(401, "bad key"))
    result = await parley_cli("chat", stdin="hello\n", env=chat_env(fake_model, tmp_path))
    assert "OPENAI_API_KEY" in result.stderr and "Traceback" not in result.stderr


async def test_settings_come_from_parley_toml(fake_model: FakeModel, tmp_path: Path) -> None:
    config = tmp_path / "parley.toml"
    config.write_text(
        f'model = "llama3.1:8b"\nopenai_base_url = "{fake_model.base_url}"\nmax_reply_tokens = 77\n'
    )
    env = {
        "PARLEY_CONFIG": str(config),
        "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'toml.db'}",
    }
    result = await parley_cli("chat", stdin="hi\n", env=env)
    assert result.code == 0, result.stderr
    assert fake_model.requests[-1]["model"] == "llama3.1:8b"
    assert fake_model.requests[-1]["max_tokens"] == 77


async def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'up.db'}",
    }
    for _ in range(2):
        result = await parley_cli("db", "upgrade", env=env)
        assert result.code == 0, result.stderr
        assert "up to date" in result.stdout
    assert (tmp_path / "up.db").exists()


async def test_run_without_platforms_says_what_to_set(tmp_path: Path) -> None:
    result = await parley_cli("run", env={"OPENAI_API_KEY": "sk-test"})
    assert result.code == 2 and "DISCORD_TOKEN" in result.stderr
