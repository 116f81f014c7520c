"""Helpers shared by tests: people, conversations, sending messages, reading prompts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import Parley
from bot.messages import Attachment, Author, ConversationKey, Facts, Final, Inbound, ReplyEvent
from bot.pipeline import Job
from bot.policy import Verdict
from bot.queued import Route
from bot.quoting import OPEN
from bot.runtime import open_parley
from bot.texts import EN
from memory.index_merging import merge_step
from memory.schema_version import VERSIONS
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel

ALICE = Author("u-alice", "Alice", is_admin=True)
BOB = Author("u-bob", "Bob")
KEY = ConversationKey("test", "workspace", "general")


async def collect(parley: Parley, message: Inbound) -> list[ReplyEvent]:
    return [event async for event in parley.reply(message)]


async def ask(
    parley: Parley,
    text: str,
    author: Author = ALICE,
    key: ConversationKey = KEY,
    message_id: str | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> Final:
    """Send one message and return the Final (fails the test if there is none)."""
    events = await collect(
        parley, Inbound(key, author, text, message_id=message_id, attachments=attachments)
    )
    assert events and isinstance(events[-1], Final), events
    return events[-1]


def mention(text: str, author: Author = ALICE, key: ConversationKey = KEY) -> Inbound:
    """A message that @mentions Parley (so the policy admits it anywhere)."""
    return Inbound(key, author, text, facts=Facts(mentioned=True))


class Answers:
    """A test adapter's side of the pipeline: answers each stored message with `Parley.reply`
    (lane "test") and keeps its Final, in the order they were answered. Files stand in for
    downloads: handed over when a message's turn comes."""

    def __init__(self, parley: Parley) -> None:
        self.parley = parley
        self.finals: list[tuple[Inbound, Final]] = []
        self.files: dict[str | None, tuple[Attachment, ...]] = {}

    async def mend(self) -> None:
        """Nothing to mend: this adapter shows nothing on a platform."""

    async def answer(self, job: Job) -> None:
        files = self.files.get(job.message.message_id, ())
        events = await collect(self.parley, replace(job.message, attachments=files))
        assert isinstance(events[-1], Final)
        self.finals.append((job.message, events[-1]))


async def through_pipeline(
    parley: Parley, messages: list[Inbound], within: float = 20.0
) -> list[Final]:
    """Accept `messages` (stored at once, in this order) and wait until the pipeline answered
    every admitted one; their Finals in the order the messages were given."""
    answers = Answers(parley)
    await parley.pipeline.serve("test", answers)
    accepted = []
    for number, message in enumerate(messages):
        if message.message_id is None:
            message = replace(message, message_id=f"m{number}")
        answers.files[message.message_id] = message.attachments
        admission = await parley.accept(message, Route("test", str(number + 1)))
        if admission.verdict is Verdict.ANSWER:
            accepted.append(message.message_id)
    await until(lambda: len(answers.finals) >= len(accepted), within)
    finals = {message.message_id: final for message, final in answers.finals}
    return [finals[message_id] for message_id in accepted]


async def settled(parley: Parley, within: float = 20.0) -> None:
    """Wait until every stored message is answered (or missed) and shown, then for background
    work."""

    async def waiting() -> bool:
        counts = await parley.pipeline.queue.counts()
        return bool(counts.get("pending") or counts.get("answering"))

    async with asyncio.timeout(within):
        while await waiting():  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.02)
        await parley.gate.idle()  # final edits: an item ends when its reply is stored
    await parley.drain()


async def until(condition: Callable[[], object], within: float = 5.0) -> None:
    """Wait until `condition()` is true (polling), or fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - state owned by fakes and processes: no Event
            await asyncio.sleep(0.01)


def is_quoted(message: Any) -> bool:
    """Outside text (recall, summary, search) as the core sends it: quoted, not history."""
    return f"\n{OPEN}\n" in str(message["content"])


def requests_for(model: FakeModel, text: str) -> list[dict[str, Any]]:
    """The chat requests that answer `text` (not background ones such as summaries)."""
    return [body for body in model.requests if str(body["messages"][-1]["content"]).endswith(text)]


GENERAL = ConversationKey("discord", "guild-1", "general")
RANDOM = ConversationKey("discord", "guild-1", "random")
ELSEWHERE = ConversationKey("discord", "guild-2", "general")
# The fixed start of the summary instruction tells summary requests from replies.
SUMMARY_PREFIX = EN["summary.instruction"].split("{")[0]


async def old_conversation(engine: AsyncEngine, key: ConversationKey) -> int:
    """A conversation created under an older schema revision: only with the columns every
    revision has (the ORM would also name newer ones). Its id."""
    async with engine.begin() as connection:
        created = await connection.execute(
            text(
                "INSERT INTO conversations (platform, workspace, channel, thread, reset_after, "
                "created_at) VALUES (:platform, :workspace, :channel, :thread, 0, "
                "CURRENT_TIMESTAMP) RETURNING id"
            ),
            {
                "platform": key.platform,
                "workspace": key.workspace,
                "channel": key.channel,
                "thread": key.thread,
            },
        )
        return int(created.scalar_one())


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database back to `revision`, as `alembic downgrade` does."""

    def run(connection: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(VERSIONS.parent))
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def index_segments(engine: AsyncEngine) -> int:
    """Segments of SQLite's search index of messages in use: FTS5 numbers a segment's pages
    from its id (`id >> 37`, 0 for the index's own records)."""
    async with engine.connect() as connection:
        query = "SELECT count(DISTINCT id >> 37) FROM messages_fts_data WHERE id >> 37 > 0"
        return int((await connection.execute(text(query))).scalar_one())


def left_to_merge(path: Path) -> bool:
    """Whether a merge step on a connection of its own finds anything to merge in the search
    index of the SQLite file at `path` (and merges it: ask last)."""
    raw = sqlite3.connect(path)
    try:
        merged = merge_step(raw, 16)
        raw.commit()
        return merged
    finally:
        raw.close()


async def old_message(engine: AsyncEngine, conversation_id: int, content: str) -> None:
    """A message stored under an older schema revision (columns every revision has)."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO messages (conversation_id, role, author_id, author_name, content, "
                "tokens, created_at) VALUES (:c, 'user', 'u-alice', 'Alice', :content, 9, "
                "CURRENT_TIMESTAMP)"
            ),
            {"c": conversation_id, "content": content},
        )


@asynccontextmanager
async def parley_on(
    make_settings: SettingsFactory, database_url: str, **overrides: object
) -> AsyncIterator[Parley]:
    values: dict[str, object] = {"context_tokens": 1024, "max_reply_tokens": 128}
    values.update(overrides)
    async with open_parley(make_settings(database_url=database_url, **values)) as parley:
        yield parley


def is_summary_request(body: dict[str, Any]) -> bool:
    return str(body["messages"][0]["content"]).startswith(SUMMARY_PREFIX)


def reply_prompt(model: FakeModel, question: str) -> str:
    """Everything sent to the model with the reply to `question`, as one text."""
    for body in reversed(model.requests):
        if not is_summary_request(body) and question in body["messages"][-1]["content"]:
            return "\n".join(str(m["content"]) for m in body["messages"])
    raise AssertionError(f"no reply request for {question!r}")


def filler(number: int) -> str:
    return (
        f"Filler message {number}: talking about weather, lunch plans and the traffic "
        f"downtown, nothing memorable here at all."
    )
