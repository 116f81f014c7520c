"""`parley init`: commented templates that load, secrets kept private, nothing overwritten
without --force."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from bot.cli import app
from bot.settings import ConfigError, load_settings
from tests.process import parley_env, run_parley


async def test_non_interactive_writes_defaults_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "conf"
    first = await run_parley("init", "--dir", str(target), env=parley_env())
    assert first.code == 0, first.stderr
    toml = tomllib.loads((target / "parley.toml").read_text())
    assert toml == {"openai_base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"}
    text = (target / "parley.toml").read_text()
    assert "# env: PARLEY_SHUTDOWN_TIMEOUT\n# shutdown_timeout = 20.0" in text
    assert "api_key" not in text  # secrets live in .env only
    env_file = target / ".env"
    assert "# OPENAI_API_KEY=\n" in env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    (target / "parley.toml").write_text('model = "mine"\n')
    again = await run_parley("init", "--dir", str(target), env=parley_env())
    assert again.code == 0 and "not overwritten" in again.stdout
    assert (target / "parley.toml").read_text() == 'model = "mine"\n'

    forced = await run_parley("init", "--dir", str(target), "--force", env=parley_env())
    assert forced.code == 0
    assert tomllib.loads((target / "parley.toml").read_text())["model"] == "gpt-4o-mini"


def test_interactive_answers_load_as_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = (
        "http://127.0.0.1:11434/v1\n\nllama3.2\nicq, discord\ndiscord, slack\n"
        "discord-tok-123\nxoxb-1-2\n\nslack-secret\n"
    )
    result = CliRunner().invoke(app, ["init", "--ask", "--dir", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    assert "Unknown platform(s): icq" in result.output
    env_text = (tmp_path / ".env").read_text()
    assert "DISCORD_TOKEN=discord-tok-123\n" in env_text
    assert "SLACK_BOT_TOKEN=xoxb-1-2\n" in env_text and "# SLACK_APP_TOKEN=\n" in env_text
    assert "SLACK_SIGNING_SECRET=slack-secret\n" in env_text

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARLEY_CONFIG", str(tmp_path / "parley.toml"))
    settings = load_settings()
    assert settings.openai_base_url == "http://127.0.0.1:11434/v1"
    assert settings.model == "llama3.2" and settings.openai_api_key is None
    discord, slack = settings.section(DiscordSettings), settings.section(SlackSettings)
    assert discord.discord_token == "discord-tok-123"
    assert slack.slack_bot_token == "xoxb-1-2" and slack.slack_app_token is None
    assert slack.slack_signing_secret == "slack-secret"


def test_defaults_need_a_key_before_they_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(app, ["init", "--no-ask", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARLEY_CONFIG", str(tmp_path / "parley.toml"))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_settings()
