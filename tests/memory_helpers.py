"""Helpers for the long-term memory tests: a Parley on a given database, messages, prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import Parley
from bot.messages import Attachment, Author, ConversationKey, Final, Inbound
from bot.runtime import open_parley
from bot.texts import EN
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel

ALICE = Author("u-alice", "Alice")
BOB = Author("u-bob", "Bob")
GENERAL = ConversationKey("discord", "guild-1", "general")
RANDOM = ConversationKey("discord", "guild-1", "random")
ELSEWHERE = ConversationKey("discord", "guild-2", "general")
# The fixed start of the summary instruction tells summary requests from replies.
SUMMARY_PREFIX = EN["summary.instruction"].split("{")[0]


async def old_conversation(engine: AsyncEngine, key: ConversationKey) -> int:
    """A conversation created under an older schema revision: only with the columns every
    revision has (the ORM would also name newer ones). Its id."""
    async with engine.begin() as connection:
        created = await connection.execute(text(
            "INSERT INTO conversations (platform, workspace, channel, thread, reset_after, "
            "created_at) VALUES (:platform, :workspace, :channel, :thread, 0, CURRENT_TIMESTAMP) "
            "RETURNING id"), {"platform": key.platform, "workspace": key.workspace,
                              "channel": key.channel, "thread": key.thread})
        return int(created.scalar_one())


@asynccontextmanager
async def parley_on(make_settings: SettingsFactory, database_url: str,
                    **overrides: object) -> AsyncIterator[Parley]:
    values: dict[str, object] = {"context_tokens": 1024, "max_reply_tokens": 128}
    values.update(overrides)
    async with open_parley(make_settings(database_url=database_url, **values)) as parley:
        yield parley


async def say_to(parley: Parley, key: ConversationKey, author: Author, text: str,
                 attachments: tuple[Attachment, ...] = ()) -> Final:
    final: Final | None = None
    async for event in parley.reply(Inbound(key, author, text, attachments=attachments)):
        if isinstance(event, Final):
            final = event
    assert final is not None
    return final


def is_summary_request(body: dict[str, Any]) -> bool:
    return str(body["messages"][0]["content"]).startswith(SUMMARY_PREFIX)


def reply_prompt(model: FakeModel, question: str) -> str:
    """Everything sent to the model with the reply to `question`, as one text."""
    for body in reversed(model.requests):
        if not is_summary_request(body) and question in body["messages"][-1]["content"]:
            return "\n".join(str(m["content"]) for m in body["messages"])
    raise AssertionError(f"no reply request for {question!r}")


def filler(number: int) -> str:
    return (f"Filler message {number}: talking about weather, lunch plans and the traffic "
            f"downtown, nothing memorable here at all.")
