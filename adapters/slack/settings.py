"""Slack's section of the settings (same sources and variable names as the core's), and the
neutral rules it sets for `bot.policy`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from bot.policy import PlatformRules
from bot.settings import IdList, SettingsSection, env_alias
from bot.texts import say


class SlackSettings(SettingsSection):
    slack_bot_token: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("SLACK_BOT_TOKEN", "slack_bot_token"),
            description="Slack bot token (xoxb-…); setting it enables Slack in `parley run`.",
        ),
    ] = None
    slack_app_token: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("SLACK_APP_TOKEN", "slack_app_token"),
            description="Slack app-level token (xapp-…): use Socket Mode (no public URL needed).",
        ),
    ] = None
    slack_signing_secret: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("SLACK_SIGNING_SECRET", "slack_signing_secret"),
            description="Slack signing secret: use HTTP mode (events at /slack/events) when no app "
            "token is set.",
        ),
    ] = None
    slack_port: Annotated[
        int,
        Field(
            validation_alias=env_alias("SLACK_PORT", "slack_port"),
            ge=0,
            le=65535,
            description="Port of the Slack HTTP-mode endpoint.",
        ),
    ] = 3000
    slack_host: Annotated[
        str,
        Field(
            description="Address the Slack HTTP-mode endpoint listens on.",
        ),
    ] = "0.0.0.0"
    slack_api_url: Annotated[
        str,
        Field(
            validation_alias=env_alias("SLACK_API_URL", "slack_api_url"),
            description="Slack Web API base URL (e.g. for GovSlack); a trailing / is added.",
        ),
    ] = "https://slack.com/api/"
    slack_allowed_channels: Annotated[
        IdList,
        Field(
            description="Comma-separated channel ids Parley answers in; empty: every channel it is "
            "in. DMs are governed by the user list only.",
        ),
    ] = frozenset()
    slack_allowed_users: Annotated[
        IdList,
        Field(
            description="Comma-separated user ids Parley answers; empty: everyone.",
        ),
    ] = frozenset()
    slack_admin_users: Annotated[
        IdList,
        Field(
            description="Comma-separated user ids allowed to /reset and change the persona in "
            "channels (in a DM the person is always admin of it).",
        ),
    ] = frozenset()
    slack_answer_channels: Annotated[
        IdList,
        Field(
            description="Comma-separated channel ids where every message is answered, no mention "
            "needed.",
        ),
    ] = frozenset()

    slack_dms: Annotated[
        bool,
        Field(
            description="Answer direct messages on Slack (false: refuse them, saying why once).",
        ),
    ] = True

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def problem(self) -> str | None:
        if self.slack_bot_token and not (self.slack_app_token or self.slack_signing_secret):
            return say("config.slack_mode")
        return None

    def rules(self) -> PlatformRules:
        return PlatformRules(
            channels=self.slack_allowed_channels,
            users=self.slack_allowed_users,
            admin_users=self.slack_admin_users,
            answer_channels=self.slack_answer_channels,
            dms=self.slack_dms,
        )
