"""Showing usage: the `parley usage` table or JSON, and the `/usage` command."""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

from bot.commands import CommandContext, CommandSpec
from bot.settings import Settings
from bot.texts import say
from bot.usage import Prices, UsageLine, load_prices, usage_lines
from memory.db import migrated_engine
from memory.usage import Grouping, UsageFilter, UsageStore, utc_today

ReportFormat = Literal["table", "json"]
# Days `/usage` looks back over, besides today.
COMMAND_DAYS = 30
# People listed in an admin's view of a channel.
TOP_PEOPLE = 10
_COLUMNS = ("key", "messages", "calls", "prompt_tokens", "reply_tokens", "cost")


def render_report(lines: Sequence[UsageLine], fmt: ReportFormat) -> str:
    """`parley usage` output: aligned columns with a total, or a JSON array of rows."""
    if fmt == "json":
        return json.dumps([line.as_json() for line in lines], ensure_ascii=False, indent=2)
    if not lines:
        return say("usage.none")
    total = functools.reduce(UsageLine.plus, lines, UsageLine(say("usage.total"), 0, 0, 0, 0, 0, 0))
    cells = [list(_COLUMNS)] + [_cells(line) for line in (*lines, total)]
    widths = [max(_width(row[index]) for row in cells) for index in range(len(_COLUMNS))]
    rendered = [
        "  ".join(
            _pad(cell, width, left=index == 0)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
    estimated = total.estimated_calls
    note = [say("usage.estimated", calls=f"{estimated:,}")] if estimated else []
    return "\n".join(rendered + note)


async def usage_report(settings: Settings, days: int, by: Grouping, fmt: ReportFormat) -> str:
    """`parley usage`: the last `days` UTC days (today included) grouped `by`."""
    prices = load_prices(settings.prices)
    since = utc_today() - timedelta(days=days - 1)
    async with migrated_engine(settings.resolved_database_url) as engine:
        lines = await usage_lines(UsageStore(engine), prices, by, UsageFilter(since))
    return render_report(lines, fmt)


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: Korean and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(cell: str, width: int, left: bool) -> str:
    space = " " * (width - _width(cell))
    return cell + space if left else space + cell


def _cells(line: UsageLine) -> list[str]:
    return [
        line.label,
        f"{line.messages:,}",
        f"{line.calls:,}",
        f"{line.prompt_tokens:,}",
        f"{line.reply_tokens:,}",
        f"{line.cost:,.4f}",
    ]


def _summary(line: UsageLine | None, prices: Prices) -> str:
    if line is None:
        return say("usage.nothing")
    cost = say("usage.cost", cost=f"{line.cost:,.4f}") if prices else ""
    return say(
        "usage.summary",
        messages=f"{line.messages:,}",
        tokens=f"{line.prompt_tokens + line.reply_tokens:,}",
        prompt=f"{line.prompt_tokens:,}",
        reply=f"{line.reply_tokens:,}",
        cost=cost,
    )


class UsageCommand:
    """`/usage`: a person's own figures (today and the last 30 days) and their limits; an
    admin also sees the channel's, per person."""

    def __init__(self, store: UsageStore, prices: Prices, tokens_per_day: int | None) -> None:
        self.store = store
        self.prices = prices
        self.tokens_per_day = tokens_per_day

    def spec(self) -> CommandSpec:
        return CommandSpec("usage", "/usage", say("command.usage_report"), self.handle)

    async def handle(self, ctx: CommandContext, _args: str) -> str:
        key, author = ctx.message.key, ctx.message.author
        today = utc_today()
        since = today - timedelta(days=COMMAND_DAYS - 1)

        async def mine(first_day: date) -> UsageLine | None:
            where = UsageFilter(first_day, key.platform, author.id)
            lines = await usage_lines(self.store, self.prices, "user", where)
            return lines[0] if lines else None

        today_line, month_line = await mine(today), await mine(since)
        parts = [
            say("usage.today", summary=_summary(today_line, self.prices)),
            say("usage.days", days=COMMAND_DAYS, summary=_summary(month_line, self.prices)),
        ]
        if self.tokens_per_day is not None:
            used = today_line.prompt_tokens + today_line.reply_tokens if today_line else 0
            parts.append(say("usage.limit", used=f"{used:,}", limit=f"{self.tokens_per_day:,}"))
        if author.is_admin:
            parts.append(await self._channel(ctx, since))
        return "\n".join(parts)

    async def _channel(self, ctx: CommandContext, since: date) -> str:
        key = ctx.message.key
        where = UsageFilter(since, channel=(key.platform, key.workspace, key.channel))
        people = await usage_lines(self.store, self.prices, "user", where)
        lines = [say("usage.channel", days=COMMAND_DAYS)]
        lines += [
            say("usage.person", who=line.label, summary=_summary(line, self.prices))
            for line in people[:TOP_PEOPLE]
        ]
        if not people:
            lines.append(say("usage.nothing"))
        return "\n".join(lines)
