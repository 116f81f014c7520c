"""Small helpers shared by tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.core import Parley
from bot.messages import Author, ConversationKey, Final, Inbound, ReplyEvent
from tests.fakes.model_server import FakeModel

ALICE = Author("u-alice", "Alice", is_admin=True)
BOB = Author("u-bob", "Bob")
KEY = ConversationKey("test", "workspace", "general")


async def collect(parley: Parley, message: Inbound) -> list[ReplyEvent]:
    return [event async for event in parley.reply(message)]


async def ask(parley: Parley, text: str, author: Author = ALICE, key: ConversationKey = KEY,
              message_id: str | None = None) -> Final:
    """Send one message and return the Final (fails the test if there is none)."""
    events = await collect(parley, Inbound(key, author, text, message_id=message_id))
    assert events and isinstance(events[-1], Final), events
    return events[-1]


async def until(condition: Callable[[], object], within: float = 5.0) -> None:
    """Wait until `condition()` is true (polling), or fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - state owned by fakes and processes: no Event
            await asyncio.sleep(0.01)


def requests_for(model: FakeModel, text: str) -> list[dict[str, Any]]:
    """The chat requests that answer `text` (not background ones such as summaries)."""
    return [body for body in model.requests
            if str(body["messages"][-1]["content"]).endswith(text)]
