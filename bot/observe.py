"""Watching replies: how long each took, when its first words came, what it cost, how it ended.

`observe` wraps one reply's event stream and tells every `ReplyObserver` (the log line, the
Prometheus metrics) when it starts and how it finished, without changing the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.messages import ConversationKey, Delta, Final, Inbound, ReplyEvent, TokenUsage

# How a reply ended when it has no Final of its own.
DUPLICATE = "duplicate"  # ended without a Final (re-deliveries are turned away by admit)
CANCELLED = "cancelled"  # the consumer went away or shutdown cancelled it
ERROR = "error"  # an unexpected exception escaped the core


@dataclass(frozen=True)
class ReplyReport:
    key: ConversationKey
    message_id: str | None
    outcome: str  # an Outcome value, or DUPLICATE / CANCELLED / ERROR
    seconds: float
    first_token_seconds: float | None
    usage: TokenUsage | None


class ReplyObserver(Protocol):
    def reply_started(self, message: Inbound) -> None: ...

    def reply_finished(self, report: ReplyReport) -> None: ...


async def observe(
    message: Inbound, events: AsyncIterator[ReplyEvent], observers: Sequence[ReplyObserver]
) -> AsyncIterator[ReplyEvent]:
    """Pass `events` through unchanged, reporting the reply to `observers` when it ends."""
    started = time.perf_counter()
    first_token: float | None = None
    final: Final | None = None
    outcome = ERROR
    for observer in observers:
        observer.reply_started(message)
    try:
        async for event in events:
            if isinstance(event, Delta) and first_token is None:
                first_token = time.perf_counter() - started
            elif isinstance(event, Final):
                final = event
            yield event
        outcome = final.outcome.value if final is not None else DUPLICATE
    except GeneratorExit:
        outcome = final.outcome.value if final is not None else CANCELLED
        raise
    except BaseException as exc:
        # Recorded, never swallowed: the exception goes on to the adapter.
        outcome = ERROR if isinstance(exc, Exception) else CANCELLED
        raise
    finally:
        report = ReplyReport(
            message.key,
            message.message_id,
            outcome,
            time.perf_counter() - started,
            first_token,
            final.usage if final is not None else None,
        )
        for observer in observers:
            observer.reply_finished(report)
