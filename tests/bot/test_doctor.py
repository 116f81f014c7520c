"""`parley doctor` against real fakes: the model server, Discord REST, Slack Web API, and real
SQLite/PostgreSQL databases."""

from __future__ import annotations

from sqlalchemy import text

from bot.checks import Check
from bot.doctor import diagnose, report
from bot.settings import Settings
from memory.db import create_engine, migrate
from tests.conftest import SettingsFactory
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import API_PREFIX, FakeDiscord
from tests.fakes.model_server import Fail, FakeModel
from tests.fakes.slack_fixtures import fake_slack
from tests.fakes.slack_server import FakeSlack
from tests.process import parley_env, run_parley

__all__ = ["fake_discord", "fake_slack"]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def upgraded(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


async def test_everything_configured_passes(
    make_settings: SettingsFactory,
    database_url: str,
    fake_discord: FakeDiscord,
    fake_slack: FakeSlack,
) -> None:
    await upgraded(database_url)
    settings = make_settings(
        database_url=database_url,
        discord_token="fake-token",
        discord_api_url=fake_discord.base_url + API_PREFIX,
        slack_bot_token=fake_slack.bot_token,
        slack_app_token=fake_slack.app_token,
        slack_api_url=fake_slack.base_url,
    )
    checks = await diagnose(settings)
    assert [c.name for c in checks] == [
        "configuration",
        "database",
        "schema",
        "model endpoint",
        "model",
        "model reply",
        "context window",
        "token counts",
        "discord",
        "discord intents",
        "discord shards",
        "slack",
        "slack scopes",
        "slack mode",
    ]
    assert all(c.ok for c in checks), report(checks)
    found = by_name(checks)
    assert "up to date" in found["schema"].detail
    assert "parley" in found["discord"].detail
    assert "Socket Mode" in found["slack mode"].detail
    assert report(checks).endswith("14 passed, 0 failed.")


async def test_new_database_is_fine_and_says_schema_comes_at_start(
    make_settings: SettingsFactory,
) -> None:
    checks = by_name(await diagnose(make_settings()))
    assert checks["database"].ok and checks["schema"].ok
    assert "created at start-up" in checks["schema"].detail
    assert checks["platforms"].ok and "parley chat" in checks["platforms"].detail


async def test_database_written_by_a_newer_parley_fails(
    make_settings: SettingsFactory, database_url: str
) -> None:
    await upgraded(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    schema = by_name(await diagnose(make_settings(database_url=database_url)))["schema"]
    assert not schema.ok and "9999" in schema.detail and "Upgrade Parley" in schema.fix


async def test_unreachable_database_fails_with_fix(make_settings: SettingsFactory) -> None:
    url = "postgresql+asyncpg://parley:secret@127.0.0.1:1/parley"
    database = by_name(await diagnose(make_settings(database_url=url)))["database"]
    assert not database.ok and "PARLEY_DATABASE_URL" in database.fix
    assert "secret" not in database.detail  # the password is hidden


async def test_rejected_key_fails_once_with_the_fix() -> None:
    async with FakeModel(api_key="sk-right") as model:
        settings = Settings(
            _env_file=None,
            openai_api_key="sk-wrong",  # type: ignore[call-arg]
            openai_base_url=model.base_url,
            database_url="sqlite+aiosqlite://",
        )
        checks = by_name(await diagnose(settings))
    endpoint = checks["model endpoint"]
    assert not endpoint.ok and "OPENAI_API_KEY" in endpoint.fix
    assert "model reply" not in checks  # no point trying a reply with a refused key
    assert model.requests == []


async def test_unreachable_endpoint(make_settings: SettingsFactory) -> None:
    checks = by_name(await diagnose(make_settings(openai_base_url="http://127.0.0.1:1/v1")))
    assert not checks["model endpoint"].ok
    assert "OPENAI_BASE_URL" in checks["model endpoint"].fix


async def test_model_not_offered_is_named_with_alternatives(make_settings: SettingsFactory) -> None:
    checks = by_name(await diagnose(make_settings(model="llama3.2")))
    assert not checks["model"].ok
    assert "gpt-4o-mini" in checks["model"].detail and "PARLEY_MODEL" in checks["model"].fix


async def test_endpoint_without_model_list_is_checked_by_a_reply() -> None:
    async with FakeModel(models=None) as model:
        settings = Settings(
            _env_file=None,
            openai_base_url=model.base_url,  # type: ignore[call-arg]
            model="llama3.2",
            database_url="sqlite+aiosqlite://",
        )
        checks = by_name(await diagnose(settings))
    assert checks["model endpoint"].ok and "no model list" in checks["model endpoint"].detail
    assert "model" not in checks
    assert checks["model reply"].ok
    assert model.requests[-1]["stream"] is True and model.requests[-1]["model"] == "llama3.2"


async def test_failing_completion_fails_the_reply_check(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(500, "boom"))
    reply = by_name(await diagnose(make_settings()))["model reply"]
    assert not reply.ok and "server_error" in reply.detail and "logs" in reply.fix


async def test_cli_exit_codes(fake_model: FakeModel, sqlite_url: str) -> None:
    env = parley_env(
        OPENAI_BASE_URL=fake_model.base_url,
        OPENAI_API_KEY="sk-test",
        PARLEY_DATABASE_URL=sqlite_url,
    )
    passed = await run_parley("doctor", env=env)
    assert passed.code == 0, passed.stdout + passed.stderr
    assert "[ ok ] model reply" in passed.stdout and "[FAIL]" not in passed.stdout

    failed = await run_parley("doctor", env=env | {"PARLEY_MODEL": "nope"})
    assert failed.code == 1
    assert "[FAIL] model: 'nope'" in failed.stdout and "fix: Set PARLEY_MODEL" in failed.stdout

    unconfigured = await run_parley("doctor", env=parley_env())
    assert unconfigured.code == 1
    assert "[FAIL] configuration" in unconfigured.stdout and "OPENAI_API_KEY" in unconfigured.stdout
