"""Store, then acknowledge, on Slack end to end (real bolt app over HTTP, FakeSlack, the fake
model, a real SQLite file): the ack waits for the stored row, a burst in one thread is answered
in ts order with every earlier message and reply in each prompt, and a retry of an answered
event shows nothing."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy.engine import make_url

from tests.adapters.test_slack import Running, bot, slack_settings  # noqa: F401
from tests.fakes.model_server import FakeModel, Reply
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import BOB, GENERAL
from tests.helpers import settled


async def test_an_event_is_acknowledged_only_once_it_is_stored(bot: Running) -> None:
    path = make_url(bot.parley.settings.resolved_database_url).database
    assert path
    body = bot.fake.app_mention_event("store me first")
    # Off the event loop: Parley's own write must be able to finish while this one waits.
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        await asyncio.to_thread(blocker.execute, "BEGIN IMMEDIATE")  # another writer
        posting = asyncio.create_task(bot.post(body))
        await asyncio.sleep(1.0)
        assert not posting.done(), "Slack was acknowledged before the message was stored"
        await asyncio.to_thread(blocker.execute, "ROLLBACK")
    finally:
        blocker.close()
    response = await posting
    assert response.status == 200
    counts = await bot.parley.pipeline.queue.counts()
    assert sum(counts.values()) == 1
    await bot.final(GENERAL, body["event"]["ts"])


async def test_a_burst_in_a_thread_is_answered_in_order(
    bot: Running, fake_model: FakeModel
) -> None:
    start = bot.fake.app_mention_event("let's count")
    root = start["event"]["ts"]
    await bot.post(start)
    await bot.final(GENERAL, root)
    # Earlier messages take longer: answered side by side, they would finish out of order.
    delays = iter([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])

    def slower_first(body: dict[str, Any]) -> Reply:
        return Reply(f"re: {body['messages'][-1]['content']}", delay=next(delays, 0.0))

    fake_model.default = slower_first
    events = [bot.fake.message_event(f"number {n}", user=BOB, thread_ts=root) for n in range(6)]

    async def send(n: int, body: dict[str, Any]) -> int:
        await asyncio.sleep(n * 0.005)  # a few milliseconds apart
        return (await bot.post(body)).status

    assert await asyncio.gather(*(send(n, e) for n, e in enumerate(events))) == [200] * 6
    await settled(bot.parley)

    replies = [m.text for m in bot.fake.thread(GENERAL, root) if m.user != BOB][-6:]
    assert replies == [f"re: [bob] number {n}" for n in range(6)]
    prompts = [body["messages"] for body in fake_model.requests[-6:]]
    for n, messages in enumerate(prompts):
        said = [str(m["content"]) for m in messages]
        expected = [
            text for k in range(n) for text in (f"[bob] number {k}", f"re: [bob] number {k}")
        ] + [f"[bob] number {n}"]
        assert said[-len(expected) :] == expected, f"prompt {n}: {said}"


async def test_a_retry_of_an_answered_event_shows_nothing(
    bot: Running, fake_model: FakeModel
) -> None:
    body = bot.fake.app_mention_event("only once")
    await bot.post(body)
    await bot.final(GENERAL, body["event"]["ts"])
    await bot.settle()
    posted, asked = len(bot.fake.messages[GENERAL]), len(fake_model.requests)

    retried = await bot.post(body, retry_num=1)
    await asyncio.sleep(0.3)
    await bot.settle()

    assert retried.status == 200
    assert len(bot.fake.messages[GENERAL]) == posted
    assert len(fake_model.requests) == asked
    assert (await bot.parley.pipeline.queue.counts()) == {"answered": 1}
