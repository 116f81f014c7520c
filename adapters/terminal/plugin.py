"""The terminal as a Parley adapter plug-in: it brings the `parley chat` command and is never
started by `parley run`."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.plugins import AdapterPlugin, JobRunner
from bot.policy import PlatformRules
from bot.settings import Settings, SettingsSection


class TerminalSettings(SettingsSection):
    """The terminal needs no settings of its own."""


def add_commands(app: typer.Typer, run: JobRunner) -> None:
    @app.command()
    def chat(
        conversation: Annotated[
            str, typer.Option("--conversation", "-c", help="Name of the conversation to continue.")
        ] = "default",
    ) -> None:
        """Chat in the terminal; history is kept across runs."""
        from adapters.terminal.chat import TerminalChat
        from bot.lifecycle import serve
        from bot.runtime import open_parley

        async def job(settings: Settings) -> None:
            async with open_parley(settings) as parley:
                await serve(
                    [TerminalChat(parley, conversation).run()],
                    parley.gate,
                    settings.shutdown_timeout,
                )

        run(job, quiet=True)


PLUGIN = AdapterPlugin(
    name="terminal",
    section=TerminalSettings,
    rules=lambda _section: PlatformRules(),
    configured=lambda _section: False,
    commands=add_commands,
)
