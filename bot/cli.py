"""The `parley` command line. Heavy modules are imported inside commands, so `--help` and
configuration errors answer at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from bot.settings import ConfigError, Settings, load_settings
from bot.texts import say

app = typer.Typer(help="Parley: a self-hosted chatbot that remembers.", no_args_is_help=True,
                  add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
discord_app = typer.Typer(help="Discord set-up.", no_args_is_help=True)
app.add_typer(discord_app, name="discord")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run(job: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    settings = _settings()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(job(settings))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ConfigError as exc:  # found at start-up, e.g. a platform refusing the token
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def chat(
    conversation: Annotated[str, typer.Option(
        "--conversation", "-c", help="Name of the conversation to continue.")] = "default",
) -> None:
    """Chat in the terminal; history is kept across runs."""
    from adapters.terminal import TerminalChat
    from bot.runtime import open_parley

    async def job(settings: Settings) -> None:
        async with open_parley(settings) as parley:
            await TerminalChat(parley, conversation).run()

    _run(job)


@app.command()
def run() -> None:
    """Run the bot on every configured platform (Discord, Slack)."""
    from adapters import configured_adapters
    from bot.runtime import open_parley

    async def job(settings: Settings) -> None:
        adapters = configured_adapters(settings)
        if not adapters:
            typer.echo(say("run.none"), err=True)
            raise typer.Exit(2)
        async with open_parley(settings) as parley:
            await asyncio.gather(*(adapter.run(parley) for adapter in adapters))

    _run(job)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Parley also does this at start-up)."""
    from memory.db import create_engine, migrate

    async def job(settings: Settings) -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        typer.echo(f"Database is up to date: {engine.url.render_as_string(hide_password=True)}")

    _run(job)


@discord_app.command("sync")
def discord_sync() -> None:
    """Register Parley's slash commands with Discord (once, and after adding commands)."""
    from adapters.discord import sync_commands
    from bot.runtime import open_parley

    async def job(settings: Settings) -> None:
        if not settings.discord_token:
            raise ConfigError(say("discord.no_token"))
        async with open_parley(settings) as parley:
            names = await sync_commands(parley, settings.discord_token)
        typer.echo(say("discord.synced", count=len(names),
                       names=", ".join(f"/{name}" for name in names)))

    _run(job)


def main() -> None:
    app()
