"""Platform adapters: each turns platform events into `bot.messages.Inbound` and renders the
core's replies back. `configured_adapters` picks the ones whose settings are present; platform
libraries are imported only then, so the core runs without them installed."""

from __future__ import annotations

from typing import Protocol

from bot.core import Parley
from bot.settings import Settings


class Adapter(Protocol):
    name: str

    async def run(self, parley: Parley) -> None:
        """Serve until cancelled; clean up on the way out."""


def configured_adapters(settings: Settings) -> list[Adapter]:
    adapters: list[Adapter] = []
    if settings.slack_bot_token:
        from adapters.slack.app import SlackAdapter

        adapters.append(SlackAdapter(settings))
    if settings.discord_token:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter(settings, settings.discord_token))
    return adapters
