"""`parley doctor`'s Discord and Slack checks (each adapter's own) against the fake Discord REST
API and the fake Slack Web API."""

from __future__ import annotations

from adapters.slack.doctor import missing_slack_scopes
from bot.doctor import diagnose
from tests.bot.test_doctor import by_name
from tests.conftest import SettingsFactory
from tests.fakes.discord_server import API_PREFIX, FakeDiscord
from tests.fakes.slack_fixtures import fake_slack
from tests.fakes.slack_server import FakeSlack

__all__ = ["fake_slack"]  # the fixture is used by name; keep the import


async def test_discord_bad_token_and_missing_intent(make_settings: SettingsFactory) -> None:
    async with FakeDiscord(application_flags=0) as discord:
        settings = make_settings(
            discord_token="fake-token", discord_api_url=discord.base_url + API_PREFIX
        )
        intents = by_name(await diagnose(settings))["discord intents"]
        assert not intents.ok and "MESSAGE CONTENT INTENT" in intents.fix
        discord.fail_next("GET", "/users/@me", status=401)
        checks = by_name(await diagnose(settings))
    assert not checks["discord"].ok and "Reset Token" in checks["discord"].fix
    assert "discord intents" not in checks


async def test_discord_limited_intent_flag_counts(make_settings: SettingsFactory) -> None:
    async with FakeDiscord(application_flags=1 << 18) as discord:
        settings = make_settings(discord_token="t", discord_api_url=discord.base_url + API_PREFIX)
        assert by_name(await diagnose(settings))["discord intents"].ok


async def test_slack_failures(make_settings: SettingsFactory, fake_slack: FakeSlack) -> None:
    base = {"slack_api_url": fake_slack.base_url}
    wrong = by_name(await diagnose(make_settings(slack_bot_token="xoxb-wrong", **base)))
    assert not wrong["slack"].ok and "invalid_auth" in wrong["slack"].detail
    assert "SLACK_BOT_TOKEN" in wrong["slack"].fix

    no_mode = by_name(await diagnose(make_settings(slack_bot_token=fake_slack.bot_token, **base)))
    assert no_mode["slack"].ok and no_mode["slack scopes"].ok
    assert not no_mode["slack mode"].ok and "SLACK_SIGNING_SECRET" in no_mode["slack mode"].fix

    bad_app = by_name(
        await diagnose(
            make_settings(
                slack_bot_token=fake_slack.bot_token,
                slack_app_token="xoxb-not-an-app-token",
                **base,
            )
        )
    )
    assert not bad_app["slack mode"].ok and "xapp-" in bad_app["slack mode"].detail

    http_mode = by_name(
        await diagnose(
            make_settings(
                slack_bot_token=fake_slack.bot_token, slack_signing_secret="s3cret", **base
            )
        )
    )
    assert http_mode["slack mode"].ok and "HTTP" in http_mode["slack mode"].detail

    only_app = by_name(await diagnose(make_settings(slack_app_token=fake_slack.app_token, **base)))
    assert not only_app["slack"].ok and "SLACK_BOT_TOKEN" in only_app["slack"].detail


def test_missing_slack_scopes_are_listed() -> None:
    # Every scope the Slack code uses is checked, not only the obvious ones.
    granted = "app_mentions:read, channels:history,chat:write,commands,im:history"
    assert missing_slack_scopes(granted) == ["groups:history", "files:read", "users:read"]
