"""Slash commands from the core's command registry: every registered command becomes a Discord
command, with one text option when its usage takes an argument ("/ask <question>" → a required
`question`; "/persona [set <text> | clear]" → an optional `text`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.commands import CommandRegistry, CommandSpec

# Runs a command: (interaction, command name, its argument text).
Runner = Callable[[discord.Interaction, str, str], Awaitable[None]]

_ONE_WORD = re.compile(r"<(\w+)>")
_DESCRIPTION_LIMIT = 100


def _option(usage: str) -> tuple[str, bool] | None:
    """(option name, required) for the argument in `usage`, or None if there is none."""
    argument = usage.strip().partition(" ")[2].strip()
    if not argument:
        return None
    word = _ONE_WORD.fullmatch(argument)
    return (word[1] if word else "text"), argument.startswith("<")


def slash_command(spec: CommandSpec, run: Runner) -> app_commands.Command[Any, ..., None]:
    option = _option(spec.usage)
    callback: Callable[..., Awaitable[None]]
    if option is None:

        async def bare(interaction: discord.Interaction) -> None:
            await run(interaction, spec.name, "")

        callback = bare
    else:
        name, required = option
        if required:

            async def with_text(interaction: discord.Interaction, text: str) -> None:
                await run(interaction, spec.name, text)

            callback = with_text
        else:

            async def maybe_text(interaction: discord.Interaction, text: str = "") -> None:
                await run(interaction, spec.name, text)

            callback = maybe_text
        callback = app_commands.rename(text=name)(
            app_commands.describe(text=spec.usage[:_DESCRIPTION_LIMIT])(callback)
        )
    return app_commands.Command(
        name=spec.name, description=spec.summary[:_DESCRIPTION_LIMIT], callback=callback
    )


def add_commands(
    tree: app_commands.CommandTree[Any], registry: CommandRegistry, run: Runner
) -> None:
    for spec in registry.specs():
        tree.add_command(slash_command(spec, run))
