"""`parley doctor` checks of limits, prices, the blocked-word list and the moderation endpoint."""

from __future__ import annotations

from bot.chat import ChatClient
from bot.checks import Check, Probe
from bot.moderation import BlockedWords, EndpointModeration, ModerationFailed
from bot.settings import ConfigError, Settings
from bot.texts import say
from bot.usage import load_prices


def _limits(settings: Settings) -> list[Check]:
    parts = []
    if settings.user_messages_per_minute is not None:
        parts.append(say("doctor.limits.per_minute", count=settings.user_messages_per_minute))
    if settings.user_tokens_per_day is not None:
        parts.append(say("doctor.limits.per_day", count=f"{settings.user_tokens_per_day:,}"))
    if parts and settings.limits_exempt_admins:
        parts.append(say("doctor.limits.admins"))
    if settings.max_concurrent_replies is not None:
        parts.append(say("doctor.limits.concurrent", count=settings.max_concurrent_replies))
    if not parts:
        return []
    return [Check("limits", True, say("doctor.limits", detail=", ".join(parts)))]


def _prices(settings: Settings) -> list[Check]:
    if settings.prices is None:
        return []
    try:
        prices = load_prices(settings.prices)
    except ConfigError as exc:
        return [Check("prices", False, str(exc), say("doctor.prices.fix"))]
    count, path = len(prices.table), settings.prices
    if settings.model not in prices.table:
        detail = say("doctor.prices.unpriced", count=count, path=path, model=settings.model)
        return [Check("prices", False, detail, say("doctor.prices.fix"))]
    return [Check("prices", True, say("doctor.prices.ok", count=count, path=path))]


def _words(settings: Settings) -> list[Check]:
    if settings.blocked_words is None:
        return []
    try:
        words = BlockedWords.load(settings.blocked_words)
    except ConfigError as exc:
        return [Check("blocked words", False, str(exc), say("doctor.words.fix"))]
    detail = say("doctor.words.ok", count=words.count, path=settings.blocked_words)
    return [Check("blocked words", True, detail)]


async def _endpoint(settings: Settings) -> list[Check]:
    if settings.moderation != "endpoint":
        return []
    url = settings.openai_base_url.rstrip("/") + "/"
    chat = ChatClient(settings.model_copy(update={"model_retries": 0}))
    try:
        await EndpointModeration(chat, settings.moderation_model).check("Hello!")
    except ModerationFailed as exc:
        detail = say("doctor.moderation.failed", url=url, detail=exc)
        return [Check("moderation", False, detail, say("doctor.moderation.fix"))]
    finally:
        await chat.close()
    detail = say("doctor.moderation.ok", url=url, fail=settings.moderation_fail)
    return [Check("moderation", True, detail)]


async def check_accounting(probe: Probe) -> list[Check]:
    settings = probe.settings
    return [*_limits(settings), *_prices(settings), *_words(settings), *await _endpoint(settings)]
