"""A crash through the real Slack adapter: a real `parley run` process in HTTP mode against the
fake Slack is killed with SIGKILL mid-reply. At the next start the half reply is edited into a
notice, the stored message is answered (it never was), and Slack's retry of the same event is
not answered again."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientConnectionError

from adapters.slack.mrkdwn import to_mrkdwn
from bot.streaming import CURSOR
from bot.texts import say
from tests.fakes.model_server import FakeModel, Reply
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import GENERAL, FakeSlack, Json, SignedResponse
from tests.process import free_port, parley_env, parley_running, terminate

pytestmark = pytest.mark.timeout(60)


async def post_when_up(
    fake: FakeSlack, url: str, body: Json, retry_num: int | None = None
) -> SignedResponse:
    """Post once the freshly started process listens."""
    for _ in range(200):
        try:
            return await fake.post_signed(url, body, retry_num=retry_num)
        except ClientConnectionError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing listens at {url}")


async def test_a_crash_leaves_no_half_reply_and_no_second_answer(
    fake_slack: FakeSlack, fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Reply("a long answer " * 60, chunk=4, chunk_delay=0.05))
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    env = parley_env(
        OPENAI_BASE_URL=fake_model.base_url,
        OPENAI_API_KEY="sk-test",
        PARLEY_DATABASE_URL=sqlite_url,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=fake_slack.signing_secret,
        SLACK_API_URL=fake_slack.base_url,
        SLACK_PORT=str(port),
        PARLEY_SLACK_HOST="127.0.0.1",
        PARLEY_STREAM_INTERVAL="0.2",
    )
    body = fake_slack.app_mention_event("tell me slowly")

    async with parley_running("run", env=env):  # killed with SIGKILL at the end
        assert (await post_when_up(fake_slack, url, body)).status == 200
        shown = await fake_slack.wait_for(
            lambda: [m for m in fake_slack.messages[GENERAL] if m.text.endswith(CURSOR)],
            20,
            what="a reply being streamed",
        )
    (cut,) = shown
    assert len(fake_slack.messages[GENERAL]) == 1

    async with parley_running("run", env=env) as restarted:
        notice = to_mrkdwn(say("shutdown.cut"))
        await fake_slack.wait_for(lambda: cut.text == notice, 20, what="the reply mended")
        # Stored before the crash, never answered: answered now (well within the window).
        answer = await fake_slack.wait_for(
            lambda: [m for m in fake_slack.messages[GENERAL] if m.text.startswith("echo:")],
            20,
            what="the message answered after the restart",
        )
        # Slack retries the event too: recognised, not answered again.
        retried = await post_when_up(fake_slack, url, body, retry_num=1)
        assert retried.status == 200
        await asyncio.sleep(1.0)
        done = await terminate(restarted)
    assert done.code == 0, done.stderr
    assert [m.ts for m in fake_slack.messages[GENERAL]] == [cut.ts, answer[0].ts]
    assert answer[0].thread_ts == body["event"]["ts"]
    assert len(fake_model.requests) == 2
