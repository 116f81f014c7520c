"""Per-person limits: messages per minute and tokens per UTC day, kept in the database so they
hold across every process sharing it. Over a limit, the model is not asked and the person is
told when they can write again."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from bot.messages import Inbound
from bot.settings import Settings
from bot.texts import say
from memory.usage import UsageStore, utc_today

log = logging.getLogger(__name__)


def _wait(seconds: float) -> str:
    """A short "how long" in the person's locale: seconds under two minutes, else h and min."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return say("limits.seconds", seconds=whole)
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return say("limits.minutes", minutes=minutes)
    return say("limits.hours", hours=minutes // 60, minutes=minutes % 60)


class Limits:
    """A MessageGuard (see bot.hooks): admits a message to the model or says why not."""

    def __init__(self, settings: Settings, store: UsageStore) -> None:
        self.per_minute = settings.user_messages_per_minute
        self.per_day = settings.user_tokens_per_day
        self.exempt_admins = settings.limits_exempt_admins
        self.store = store

    @property
    def active(self) -> bool:
        return self.per_minute is not None or self.per_day is not None

    async def admit(self, message: Inbound) -> str | None:
        """None when the message may go to the model (and it is counted); otherwise the
        refusal to give the person."""
        author = message.author
        if self.exempt_admins and author.is_admin:
            return None
        platform = message.key.platform
        if self.per_day is not None:
            used = await self.store.tokens_on(platform, author.id, utc_today())
            if used >= self.per_day:
                log.info("%s:%s is over the daily token limit (%d)", platform, author.id, used)
                return self._daily_refusal()
        if self.per_minute is not None:
            again = await self.store.admit(platform, author.id, self.per_minute)
            if again is not None:
                log.info("%s:%s is over the per-minute message limit", platform, author.id)
                return say(
                    "limits.per_minute", limit=self.per_minute, wait=_wait(again - time.time())
                )
        return None

    def _daily_refusal(self) -> str:
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return say(
            "limits.per_day",
            limit=f"{self.per_day:,}",
            wait=_wait((midnight - now).total_seconds()),
        )
