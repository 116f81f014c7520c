"""Chat commands. One implementation each, used by every adapter.

Adapters with native slash commands pass `Inbound.command`; elsewhere a message starting with
`/name` is a command. A command either answers with text or, like `/ask`, turns its argument
into a message for the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Command, Inbound
from bot.texts import counted, say
from bot.tools import available
from memory.privacy import forget_author
from memory.store import AFTER_ALL, ConversationState

if TYPE_CHECKING:
    from bot.core import Parley


@dataclass(frozen=True)
class CommandContext:
    parley: Parley
    message: Inbound
    conversation: ConversationState


Handler = Callable[[CommandContext, str], Awaitable[str]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    handler: Handler | None = None  # None: the argument is answered as a message
    admin_only: bool = False
    tool: str | None = None  # with no handler: run this tool on the argument first


async def _help(ctx: CommandContext, _args: str) -> str:
    lines = [say("help.header")]
    lines += [
        say("help.line", usage=spec.usage, summary=spec.summary)
        for spec in ctx.parley.commands.specs()
    ]
    lines.append(say("help.footer"))
    return "\n".join(lines)


async def _reset(ctx: CommandContext, _args: str) -> str:
    await ctx.parley.store.reset(ctx.conversation.id)
    return say("reset.done")


async def _persona(ctx: CommandContext, args: str) -> str:
    action, _, text = args.strip().partition(" ")
    if not action:
        if ctx.conversation.persona:
            return say("persona.show", persona=ctx.conversation.persona)
        return say("persona.default", persona=ctx.parley.settings.system_prompt)
    if not ctx.message.author.is_admin:
        return say("admin_only", name="persona")
    if action == "clear":
        await ctx.parley.store.set_persona(ctx.conversation.id, None)
        return say("persona.cleared")
    if action == "set" and text.strip():
        window = ctx.parley.prompts.window
        tokens = ctx.parley.counter.count(text)
        if tokens > window // 2:
            return say("persona.too_long", tokens=tokens, window=window)
        await ctx.parley.store.set_persona(ctx.conversation.id, text.strip())
        return say("persona.set")
    return say("persona.usage")


async def _memory(ctx: CommandContext, _args: str) -> str:
    parley = ctx.parley
    usage = await parley.store.usage(ctx.conversation)
    system = ctx.conversation.persona or parley.settings.system_prompt
    system_tokens = parley.counter.count(system)
    budget = parley.prompts.message_budget(system_tokens)
    fit = await parley.store.window(ctx.conversation, AFTER_ALL, budget, parley.per_message)
    # In the model's tokens the same messages may cost more (see bot/calibration.py).
    shares = await parley.fitter.shares("\n".join([system, *(m.content for m in fit)]))
    factor = parley.fitter.factor(shares)
    if factor != 1.0:
        budget = parley.prompts.message_budget(system_tokens, factor)
        fit = await parley.store.window(ctx.conversation, AFTER_ALL, budget, parley.per_message)
    return say(
        "memory.report",
        messages=counted("message", usage.messages),
        tokens=f"{usage.tokens:,}",
        window=f"{parley.prompts.window:,}",
        reserve=f"{parley.prompts.reply_reserve:,}",
        system=f"{system_tokens:,}",
        fit_messages=counted("message", len(fit)),
        fit_tokens=f"{sum(m.tokens for m in fit):,}",
    )


async def _forget(ctx: CommandContext, args: str) -> str:
    if args.strip().lower() != "me":
        return say("forget.usage")
    platform, author = ctx.message.key.platform, ctx.message.author.id
    # Those still waiting first: once answered they would be stored after the deletion.
    waiting = await ctx.parley.pipeline.forget_waiting(platform, author)
    forgotten = await forget_author(ctx.parley.store.engine, platform, author)
    return say(
        "forget.done",
        messages=counted("message", forgotten.messages + waiting),
        documents=counted("document", forgotten.documents),
    )


async def _listen(ctx: CommandContext, args: str) -> str:
    # The store keeps the flag on the channel's top level, so in a thread this is the channel's.
    choice = args.strip().lower()
    store, key = ctx.parley.store, ctx.message.key
    if choice:
        if not ctx.message.author.is_admin:
            return say("admin_only", name="listen")
        if choice not in ("on", "off"):
            return say("listen.usage")
        await store.set_listening(key, on=choice == "on")
    return say("listen.on" if await store.listening(key) else "listen.off")


async def _tools(ctx: CommandContext, _args: str) -> str:
    parley = ctx.parley
    admin = parley.policy.admin_tools(ctx.message)
    tools = available(parley.tools, parley.tool_sources, admin)
    lines = [
        say(
            "tools.line",
            name=tool.name,
            description=tool.definition["function"].get("description", "").split("\n")[0],
        )
        for tool in tools
    ]
    lines += [line for source in parley.tool_sources for line in source.status(admin)]
    return "\n".join([say("tools.header"), *lines]) if lines else say("tools.none")


class CommandRegistry:
    def __init__(self, specs: list[CommandSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def specs(self) -> list[CommandSpec]:
        return list(self._specs.values())

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name)

    def add(self, spec: CommandSpec) -> None:
        self._specs[spec.name] = spec

    def parse(self, text: str) -> Command | None:
        """`/name args` → Command, for platforms without native slash commands."""
        stripped = text.strip()
        if not stripped.startswith("/") or len(stripped) < 2:
            return None
        name, _, args = stripped[1:].partition(" ")
        # "/etc/hosts is…" is a message, not a command.
        if "/" in name:
            return None
        return Command(name.lower(), args.strip())


def default_commands() -> CommandRegistry:
    return CommandRegistry(
        [
            CommandSpec("help", "/help", say("command.help"), _help),
            CommandSpec("ask", "/ask <question>", say("command.ask")),
            CommandSpec("reset", "/reset", say("command.reset"), _reset, admin_only=True),
            CommandSpec("memory", "/memory", say("command.memory"), _memory),
            CommandSpec(
                "persona", "/persona [set <text> | clear]", say("command.persona"), _persona
            ),
            CommandSpec("forget", "/forget me", say("command.forget"), _forget),
            CommandSpec("listen", "/listen [on|off]", say("command.listen"), _listen),
            CommandSpec("tools", "/tools", say("command.tools"), _tools),
        ]
    )


def search_command(tool: str) -> CommandSpec:
    """`/search`, added when web search is configured."""
    return CommandSpec("search", "/search <query>", say("search.summary"), tool=tool)


# Commands a feature adds when configured → what to tell a person who uses one while it is off.
_SWITCHED_OFF = {"search": "search.off"}


def unavailable(name: str) -> str:
    """The answer to `/name` when no handler runs it: switched off, or unknown."""
    key = _SWITCHED_OFF.get(name)
    return say(key) if key else say("unknown_command", name=name)


def every_command() -> list[CommandSpec]:
    """The default commands and those a feature adds when configured: what platforms that
    declare commands ahead of time (Slack's manifests) must list."""
    return [*default_commands().specs(), search_command("web_search")]
