"""Usage of the model: every call recorded (the endpoint's token figures, or Parley's own count
when it gives none), priced from PARLEY_PRICES, reported by `parley usage` and `/usage`.

Calls are attributed to the person and conversation being answered through a context
variable the core sets per message; background work started by a reply (summaries,
embeddings) inherits it, since tasks copy the context they are created in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.chat import ChatMessage, ModelCall, text_of
from bot.settings import ConfigError
from bot.texts import say
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter
from memory.usage import Grouping, UsageFilter, UsageRecord, UsageRow, UsageStore

log = logging.getLogger(__name__)

# Prompts longer than this are counted in a worker thread.
_OFFLOAD_CHARS = 20_000


@dataclass(frozen=True)
class Attribution:
    platform: str
    user_id: str
    conversation_id: int


# Calls made outside any message (none today; a safe default for new ones).
_NOBODY = Attribution("", "", 0)
_attribution: ContextVar[Attribution | None] = ContextVar("parley_usage_attribution", default=None)
_kind: ContextVar[str] = ContextVar("parley_usage_kind", default="reply")


def attribute_calls(platform: str, user_id: str, conversation_id: int) -> None:
    """Model calls from here on (in this task and tasks it starts) are this person's."""
    _attribution.set(Attribution(platform, user_id, conversation_id))


@contextmanager
def call_kind(kind: str) -> Iterator[None]:
    """Record the model calls made inside the block as `kind` (e.g. "summary")."""
    token = _kind.set(kind)
    try:
        yield
    finally:
        _kind.reset(token)


@dataclass(frozen=True)
class Price:
    input: float  # per million prompt tokens
    output: float  # per million reply tokens


class Prices:
    def __init__(self, table: dict[str, Price] | None = None) -> None:
        self.table = table or {}

    def __bool__(self) -> bool:
        return bool(self.table)

    def cost(self, model: str, prompt_tokens: int, reply_tokens: int) -> float:
        """What the tokens cost; 0 for a model without a price."""
        price = self.table.get(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input + reply_tokens * price.output) / 1_000_000


def _price(model: str, entry: object) -> Price:
    if not isinstance(entry, dict):
        raise ConfigError(say("prices.invalid", model=model))
    values: dict[str, float] = {}
    for name in ("input", "output"):
        value = entry.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(say("prices.invalid", model=model))
        values[name] = float(value)
    return Price(**values)


def load_prices(path: Path | None) -> Prices:
    """The PARLEY_PRICES file; a ConfigError saying what is wrong with it."""
    if path is None:
        return Prices()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(say("prices.unreadable", path=path, error=exc.strerror or exc)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(say("prices.unreadable", path=path, error=exc)) from exc
    return Prices({model: _price(model, entry) for model, entry in data.items()})


class UsageObserver(Protocol):
    def model_used(self, model: str, prompt_tokens: int, reply_tokens: int, cost: float) -> None:
        """One model call finished (e.g. Prometheus counters)."""


class UsageMeter:
    """The chat client's CallMeter: caps requests in flight and records each call."""

    def __init__(
        self,
        store: UsageStore,
        counter: TokenCounter,
        prices: Prices,
        max_concurrent: int | None = None,
    ) -> None:
        self.store = store
        self.counter = counter
        self.prices = prices
        self.observers: list[UsageObserver] = []
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None

    def slot(self) -> AbstractAsyncContextManager[object]:
        # asyncio.Semaphore wakes waiters first come, first served.
        return self._slots if self._slots is not None else nullcontext()

    async def record(self, call: ModelCall) -> None:
        prompt, reply, estimated = await self._figures(call)
        who = _attribution.get() or _NOBODY
        kind = "embedding" if call.embedding else _kind.get()
        if kind == "reply" and call.request and _role(call.request[-1]) == "tool":
            kind = "tool"  # a later round of a reply that ran tools
        try:
            await self.store.record(
                UsageRecord(
                    who.platform,
                    who.user_id,
                    who.conversation_id,
                    call.model,
                    kind,
                    prompt,
                    reply,
                    estimated,
                )
            )
        except SQLAlchemyError:
            # A lost usage row must not cost the person their reply.
            log.exception("could not record usage of %s in conversation %s", call.model, who)
        cost = self.prices.cost(call.model, prompt, reply)
        for observer in self.observers:
            observer.model_used(call.model, prompt, reply, cost)

    async def _figures(self, call: ModelCall) -> tuple[int, int, bool]:
        if call.prompt_tokens is not None and call.reply_tokens is not None:
            return call.prompt_tokens, call.reply_tokens, False
        prompt = call.prompt_tokens
        if prompt is None:
            prompt = call.counted if call.counted is not None else await self._count_request(call)
        reply = call.reply_tokens
        if reply is None:
            reply = self.counter.count(call.received)
        return prompt, reply, True

    async def _count_request(self, call: ModelCall) -> int:
        """The request's tokens, for a call whose builder did not count them (a summary's)."""
        texts = [_text(item) for item in call.request]
        if sum(len(text) for text in texts) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(self._count_texts, call, texts)
        return self._count_texts(call, texts)

    def _count_texts(self, call: ModelCall, texts: list[str]) -> int:
        if call.embedding:
            return sum(self.counter.count(text) for text in texts)
        return TOKENS_PER_REPLY + sum(TOKENS_PER_MESSAGE + self.counter.count(t) for t in texts)


def _role(item: ChatMessage | str) -> str:
    return "" if isinstance(item, str) else item["role"]


def _text(item: ChatMessage | str) -> str:
    """A message's text as sent (with its tool calls as JSON; images not counted), or an
    embedded input."""
    if isinstance(item, str):
        return item
    calls = item.get("tool_calls") if item["role"] == "assistant" else None
    return text_of(item) + (json.dumps(calls) if calls else "")


@dataclass(frozen=True)
class UsageLine:
    """One line of a report: usage of one key over all its models, priced."""

    key: str
    messages: int
    calls: int
    prompt_tokens: int
    reply_tokens: int
    cost: float
    estimated_calls: int
    name: str = ""  # by user: the person's display name

    @property
    def label(self) -> str:
        return f"{self.key} ({self.name})" if self.name else self.key

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["cost"] = round(self.cost, 6)
        return values

    def plus(self, other: UsageLine) -> UsageLine:
        """Both lines' figures under this line's key."""
        return UsageLine(
            self.key,
            self.messages + other.messages,
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.reply_tokens + other.reply_tokens,
            self.cost + other.cost,
            self.estimated_calls + other.estimated_calls,
            self.name,
        )


def priced(rows: Sequence[UsageRow], prices: Prices) -> list[UsageLine]:
    """Rows (per key and model) summed per key, the most expensive (then busiest) first."""
    lines: dict[str, UsageLine] = {}
    for row in rows:
        line = UsageLine(
            row.key,
            row.messages,
            row.calls,
            row.prompt_tokens,
            row.reply_tokens,
            prices.cost(row.model, row.prompt_tokens, row.reply_tokens),
            row.estimated_calls,
            row.name,
        )
        lines[row.key] = lines[row.key].plus(line) if row.key in lines else line
    return sorted(
        lines.values(),
        key=lambda line: (-line.cost, -(line.prompt_tokens + line.reply_tokens), line.key),
    )


async def usage_lines(
    store: UsageStore, prices: Prices, by: Grouping, where: UsageFilter
) -> list[UsageLine]:
    return priced(await store.report(by, where), prices)
