"""The terminal as a Parley adapter plug-in: it brings the `parley chat` command and is never
started by `parley run`."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.plugins import AdapterPlugin, JobRunner
from bot.policy import PlatformRules
from bot.settings import Settings, SettingsSection
from bot.texts import say


class TerminalSettings(SettingsSection):
    """The terminal needs no settings of its own."""


def add_commands(app: typer.Typer, run: JobRunner) -> None:
    @app.command(help=say("cli.chat"))
    def chat(
        conversation: Annotated[
            str,
            typer.Option("--conversation", "-c", help=say("cli.opt.chat_conversation")),
        ] = "default",
    ) -> None:
        from adapters.terminal.chat import TerminalChat
        from bot.lifecycle import serve
        from bot.runtime import open_parley

        async def job(settings: Settings) -> None:
            async with open_parley(settings, serving=True) as parley:
                terminal = TerminalChat(parley, conversation)
                await serve(
                    [terminal.run()],
                    parley.gate,
                    settings.shutdown_timeout,
                    interrupt=terminal.interrupt,
                )
            if terminal.failed:  # told already; a script must see it too
                raise typer.Exit(1)

        run(job, quiet=True)


PLUGIN = AdapterPlugin(
    name="terminal",
    section=TerminalSettings,
    rules=lambda _section: PlatformRules(),
    configured=lambda _section: False,
    commands=add_commands,
)
