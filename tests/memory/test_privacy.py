"""`/forget me` and retention: deleted rows leave nothing behind in the search index."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core import Parley
from bot.messages import ConversationKey, Inbound
from bot.queued import Route
from memory.db import migrated_engine
from memory.inbound import InboundQueue, NewItem, State, order_key
from memory.privacy import prune, prune_events
from memory.search import FullText
from memory.tables import Document, InboundItem, Message, MessageVectors, Passage, Summary
from memory.transfer import import_rows, parse_import
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel, Reply, tool_call
from tests.fakes.search_server import FakeSearch
from tests.helpers import ALICE, BOB, GENERAL, RANDOM, ask, parley_on

SLACK = ConversationKey("slack", "T1", "C1")


async def _indexed(engine: AsyncEngine, word: str) -> int:
    """Index entries matching `word`, read from the index itself."""
    async with AsyncSession(engine) as session:
        if engine.dialect.name == "sqlite":
            query = (
                "SELECT (SELECT count(*) FROM messages_fts WHERE messages_fts MATCH :w) + "
                "(SELECT count(*) FROM passages_fts WHERE passages_fts MATCH :w)"
            )
        else:
            # Messages are searched through their word table (0012_message_words).
            query = (
                "SELECT (SELECT count(*) FROM message_words WHERE word = :w) + "
                "(SELECT count(*) FROM document_passages WHERE search @@ to_tsquery('simple', :w))"
            )
        return int((await session.execute(text(query), {"w": word})).scalar_one())


async def _count(parley: Parley, model: type[Message | Document | Passage]) -> int:
    async with AsyncSession(parley.store.engine) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_forget_me_leaves_no_trace(make_settings: SettingsFactory, database_url: str) -> None:
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, ALICE, "My passport number is zq81xk."))
        await parley.record(Inbound(RANDOM, ALICE, "Also zq81xk is my gym locker."))
        await parley.record(Inbound(GENERAL, BOB, "Bob keeps his own note: pelican."))
        await parley.record(Inbound(SLACK, ALICE, "On Slack, zq81xk too."))
        await parley.add_document(GENERAL, ALICE, "private.txt", b"zq81xk diary entry")
        engine = parley.store.engine
        assert await _indexed(engine, "zq81xk") == 4

        done = await ask(parley, key=GENERAL, author=ALICE, text="/forget me")
        assert "deleted 2 messages (yours" in done.text and "and 1 document of" in done.text

        assert await _indexed(engine, "zq81xk") == 1  # only Slack's copy remains
        slack = await parley.store.conversation(SLACK)
        assert [m.content for m in await parley.store.messages(slack.id)] == [
            "On Slack, zq81xk too."
        ]
        for key in (GENERAL, RANDOM):
            conversation = await parley.store.conversation(key)
            stored = await parley.store.messages(conversation.id)
            assert all(m.author_id != ALICE.id for m in stored)
            assert not await FullText(engine).passages([conversation.id], ["zq81xk"], 5)
        assert await _count(parley, Document) == 0 and await _count(parley, Passage) == 0
        assert await _indexed(engine, "pelican") == 1


async def test_forget_me_drops_their_messages_still_waiting(
    make_settings: SettingsFactory, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        queue = parley.pipeline.queue
        for n, (key, author) in enumerate([(RANDOM, ALICE), (RANDOM, BOB), (SLACK, ALICE)]):
            message = Inbound(key, author, f"queued zq81xk {n}", message_id=f"{n}.0")
            route = Route(lane=key.platform, order=f"{n}.0")
            assert await parley.pipeline.store(message, route, catch_up=False)

        done = await ask(parley, key=GENERAL, author=ALICE, text="/forget me")
        assert "deleted 1 message (yours" in done.text

        left = {json.loads(text)["message"]["text"] for _id, text in await queue.waiting("discord")}
        assert left == {"queued zq81xk 1"}  # Bob's
        assert len(await queue.waiting("slack")) == 1  # another platform's Alice
        assert (await queue.counts())[State.MISSED] == 1
        async with AsyncSession(parley.store.engine) as session:
            dropped = await session.scalar(
                select(InboundItem.message).where(InboundItem.state == State.MISSED)
            )
        assert dropped == ""  # its text is gone too


def _old_rows(days: int) -> list[str]:
    time = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    return [
        f'{{"conversation": "{GENERAL}", "author": "Alice", "role": "user", '
        f'"content": "ancient walrus memo {days}", "time": "{time}"}}'
    ]


async def test_retention_prunes_old_messages_at_start_up(
    make_settings: SettingsFactory, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        rows = await asyncio.to_thread(
            parse_import, _old_rows(90) + _old_rows(2), None, parley.counter
        )
        await import_rows(parley.store.engine, rows)
        await parley.record(Inbound(GENERAL, BOB, "a fresh walrus memo"))
        assert await _indexed(parley.store.engine, "walrus") == 3
        assert await prune(parley.store.engine, 30) == 1
        assert await _indexed(parley.store.engine, "walrus") == 2
        await import_rows(parley.store.engine, rows[:1])

    async with parley_on(make_settings, database_url, retention_days=30) as parley:
        for _ in range(100):  # the background task prunes at start-up
            if await _indexed(parley.store.engine, "walrus") == 2:
                break
            await asyncio.sleep(0.02)
        conversation = await parley.store.conversation(GENERAL)
        assert sorted(m.content for m in await parley.store.messages(conversation.id)) == [
            "a fresh walrus memo",
            "ancient walrus memo 2",
        ]


async def test_old_event_ids_are_forgotten_recent_ones_kept(database_url: str) -> None:
    # A bare queue: Parley's own background pruning would race with this test.
    async with migrated_engine(database_url) as engine:
        week_ago = time.time() - timedelta(days=8).total_seconds()
        old = InboundQueue(engine, "p", clock=lambda: week_ago)
        queue = InboundQueue(engine, "p")

        def event(key: str) -> NewItem:
            return NewItem("slack", key, "c", order_key("1.0"), "slack", "{}", "{}")

        assert await old.add(event("old"), State.ANSWERED)
        assert await old.add(event("old-waiting"))  # never answered: kept (it is missed)
        assert await queue.add(event("new"), State.ANSWERED)
        assert await prune_events(engine) == 1
        assert await queue.add(event("old"), State.ANSWERED)  # forgotten: stored again
        assert await queue.add(event("new")) is None  # still a re-delivery


async def test_forget_me_takes_replies_searches_dms_summaries_and_vectors(
    make_settings: SettingsFactory,
    database_url: str,
    fake_model: FakeModel,
    fake_search: FakeSearch,
) -> None:
    fake_search.add("Clinic hours", "https://example.com/clinic", "Open 9 to 5.")
    fake_model.script(
        Reply("", tool_calls=[tool_call("web_search", {"query": "dermatologist zq81xk"})]),
        Reply("Your dermatologist zq81xk opens at 9."),
        Reply("Bob, the pelican is fine."),
        Reply("In our DM: noted, zq81xk."),
    )
    dm = ConversationKey("discord", "dm", "dm-alice")
    search = {"search_provider": "searxng", "search_url": fake_search.base_url}
    async with parley_on(make_settings, database_url, **search) as parley:
        await ask(parley, "When does my dermatologist open?", key=GENERAL, author=ALICE)
        await ask(parley, "How is the pelican?", key=GENERAL, author=BOB)
        await ask(parley, "Remember zq81xk for me.", key=dm, author=ALICE)
        general = await parley.store.conversation(GENERAL)
        engine = parley.store.engine
        async with AsyncSession(engine) as session, session.begin():
            session.add(
                Summary(conversation_id=general.id, content="Alice: zq81xk", covers_until=1)
            )
            ids = list(await session.scalars(select(Message.id)))
            await session.execute(
                insert(MessageVectors),
                [
                    {"id": i, "conversation_id": general.id, "model": "m", "vector": b"\0" * 4}
                    for i in ids
                ],
            )

        await ask(parley, "/forget me", key=GENERAL, author=ALICE)

        left = [(m.role, m.content) for m in await parley.store.messages(general.id)]
        assert left == [
            ("user", "How is the pelican?"),
            ("assistant", "Bob, the pelican is fine."),
        ]
        direct = await parley.store.conversation(dm)
        assert await parley.store.messages(direct.id) == []  # the whole DM
        assert await _indexed(engine, "zq81xk") == 0
        async with AsyncSession(engine) as session:
            assert await session.scalar(select(func.count()).select_from(Summary)) == 0
            vectors = await session.scalar(select(func.count()).select_from(MessageVectors))
        assert vectors == 2  # only Bob's message and its reply keep theirs
