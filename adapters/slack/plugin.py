"""Slack as a Parley adapter plug-in (entry point `parley.adapters: slack`). slack-bolt is
imported only when the app is built or checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.slack.settings import SlackSettings
from bot.plugins import Adapter, AdapterPlugin

if TYPE_CHECKING:
    from bot.checks import Check, Probe


def _build(section: SlackSettings) -> Adapter:
    from adapters.slack.app import SlackAdapter

    return SlackAdapter(section)


async def _checks(section: SlackSettings, probe: Probe) -> list[Check]:
    from adapters.slack.doctor import check_slack

    return await check_slack(section, probe)


PLUGIN = AdapterPlugin(
    name="slack",
    section=SlackSettings,
    rules=SlackSettings.rules,
    configured=lambda section: bool(section.slack_bot_token),
    build=_build,
    checks=_checks,
)
