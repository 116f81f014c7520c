"""Wiring of per-person limits, usage records, the concurrency cap and moderation into a
Parley, as the settings ask."""

from __future__ import annotations

from bot.core import Parley
from bot.limits import Limits
from bot.moderation import open_moderation
from bot.usage import UsageMeter, load_prices
from bot.usage_report import UsageCommand
from memory.usage import UsageStore


def install_accounting(parley: Parley) -> UsageMeter:
    """Record every model call of `parley`, enforce limits and moderation, add `/usage`;
    raises ConfigError for an unreadable prices file or word list."""
    settings = parley.settings
    store = UsageStore(parley.store.engine)
    prices = load_prices(settings.prices)
    moderation = open_moderation(settings, parley.chat)
    meter = UsageMeter(store, parley.counter, prices, settings.max_concurrent_replies)
    limits = Limits(settings, store)
    parley.chat.meter = meter
    # Limits first: a person over them costs no moderation call.
    if limits.active:
        parley.guards.append(limits)
    if moderation is not None:
        parley.guards.append(moderation)
        if settings.moderate_replies:
            parley.reply_check = moderation
    parley.commands.add(UsageCommand(store, prices, settings.user_tokens_per_day).spec())
    return meter
