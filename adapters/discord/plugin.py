"""Discord as a Parley adapter plug-in (entry point `parley.adapters: discord`). discord.py is
imported only when the bot is built, checked or synced."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from adapters.discord.settings import DiscordSettings
from bot.plugins import Adapter, AdapterPlugin, JobRunner
from bot.settings import ConfigError, Settings
from bot.texts import counted, say

if TYPE_CHECKING:
    from bot.checks import Check, Probe


def _build(section: DiscordSettings) -> Adapter:
    from adapters.discord.client import DiscordAdapter

    return DiscordAdapter(section)


async def _checks(section: DiscordSettings, probe: Probe) -> list[Check]:
    from adapters.discord.doctor import check_discord

    return await check_discord(section, probe)


def add_commands(app: typer.Typer, run: JobRunner) -> None:
    discord_app = typer.Typer(help=say("cli.discord"), no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(discord_app, name="discord")

    @discord_app.command("sync", help=say("cli.discord_sync"))
    def sync() -> None:
        from adapters.discord.client import sync_commands
        from bot.runtime import open_parley

        async def job(settings: Settings) -> None:
            section = settings.section(DiscordSettings)
            if not section.discord_token:
                raise ConfigError(say("discord.no_token"))
            async with open_parley(settings, mcp_servers=False) as parley:
                names = await sync_commands(parley, section)
            typer.echo(
                say(
                    "discord.synced",
                    count=counted("command", len(names)),
                    names=", ".join(f"/{name}" for name in names),
                )
            )

        run(job)


PLUGIN = AdapterPlugin(
    name="discord",
    section=DiscordSettings,
    rules=DiscordSettings.rules,
    configured=lambda section: bool(section.discord_token),
    build=_build,
    checks=_checks,
    commands=add_commands,
)
