"""Parley on Slack, end to end: the real SlackAdapter (slack-bolt) against FakeSlack and the fake
chat API, with signed requests over HTTP and envelopes over the fake Socket Mode websocket."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.slack.app import SlackAdapter
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.settings import SlackSettings
from bot.core import Parley
from bot.messages import Outcome
from bot.plugins import configured_adapters
from bot.runtime import open_parley
from bot.settings import ConfigError, load_settings
from bot.streaming import CURSOR
from bot.texts import error_text, say
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import (
    ALICE,
    BOB,
    BOT_USER_ID,
    GENERAL,
    RANDOM,
    FakeSlack,
    Message,
    SignedResponse,
)
from tests.helpers import settled

Json = dict[str, Any]
INTERVAL = 0.2  # the smallest stream interval the settings allow
PLACEHOLDER = to_mrkdwn(say("slack.placeholder"))


@dataclass
class Running:
    fake: FakeSlack
    parley: Parley
    adapter: SlackAdapter

    async def post(self, payload: Json, **kwargs: Any) -> SignedResponse:
        return await self.fake.post_signed(self.adapter.address, payload, **kwargs)

    async def settle(self) -> None:
        """Wait for every stored message's answer, and background work."""
        await settled(self.parley)

    async def final(self, channel: str, ts: str | None = None, *, text: str = "") -> Message:
        """The bot's newest message in `channel` (in thread `ts`) once it is finished."""

        def done() -> Message | None:
            msgs = [m for m in self.fake.messages[channel] if ts is None or m.thread_ts == ts]
            last = msgs[-1] if msgs else None
            finished = (
                last
                and not last.text.endswith(CURSOR)
                and last.text != PLACEHOLDER
                and text in last.text
            )
            return last if finished else None

        return await self.fake.wait_for(done, what=f"a finished reply in {channel}")


@pytest.fixture
def slack_settings(make_settings: SettingsFactory, fake_slack: FakeSlack) -> Callable[..., Any]:
    def make(**overrides: object) -> Any:
        values: dict[str, object] = {
            "slack_bot_token": fake_slack.bot_token,
            "slack_signing_secret": fake_slack.signing_secret,
            "slack_api_url": fake_slack.base_url,
            "slack_host": "127.0.0.1",
            "slack_port": 0,
            "stream_interval": INTERVAL,
        }
        return make_settings(**(values | overrides))

    return make


@asynccontextmanager
async def running(fake: FakeSlack, settings: Any) -> AsyncIterator[Running]:
    """`parley run` with Slack configured, until the block ends."""
    async with open_parley(settings) as parley:
        (adapter,) = configured_adapters(settings)
        assert isinstance(adapter, SlackAdapter)
        task = asyncio.create_task(adapter.run(parley))
        try:
            async with asyncio.timeout(5):
                await adapter.ready.wait()
            yield Running(fake, parley, adapter)
            await settled(parley)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def bot(fake_slack: FakeSlack, slack_settings: Callable[..., Any]) -> AsyncIterator[Running]:
    async with running(fake_slack, slack_settings()) as app:
        yield app


def as_message_event(mention_body: Json) -> Json:
    """The `message` event Slack sends alongside an `app_mention` for the same message."""
    event = {**mention_body["event"], "type": "message", "channel_type": "channel"}
    return {**mention_body, "event": event, "event_id": mention_body["event_id"] + "m"}


# ------------------------------------------------------------------------- mentions, threads


async def test_mention_is_answered_once_in_its_thread(bot: Running, fake_model: FakeModel) -> None:
    body = bot.fake.app_mention_event("hello there")
    ts = body["event"]["ts"]

    first = await bot.post(body)
    second = await bot.post(as_message_event(body))
    reply = await bot.final(GENERAL, ts, text="echo:")
    await bot.settle()

    assert (first.status, second.status) == (200, 200)
    assert reply.text == "echo: [alice] hello there"
    assert reply.thread_ts == ts
    assert len(bot.fake.messages[GENERAL]) == 1
    assert len(fake_model.requests) == 1


async def test_thread_is_continued_without_mention(bot: Running, fake_model: FakeModel) -> None:
    mention = bot.fake.app_mention_event("remember 42")
    root = mention["event"]["ts"]
    await bot.post(mention)
    await bot.final(GENERAL, root)
    unrelated = bot.fake.message_event("chatter at the top level", user=BOB)["event"]["ts"]

    await bot.post(bot.fake.message_event("what number?", user=BOB, thread_ts=root))
    await bot.post(bot.fake.message_event("not for the bot", thread_ts=unrelated))
    reply = await bot.final(GENERAL, root, text="what number?")
    await bot.settle()

    assert reply.text == "echo: [bob] what number?"
    history = fake_model.requests[-1]["messages"]
    assert "[alice] remember 42" in [m["content"] for m in history]
    assert [m.thread_ts for m in bot.fake.messages[GENERAL]] == [root, root]


async def test_dm_is_answered_at_its_top_level(bot: Running) -> None:
    body = bot.fake.dm_event("hi in private", user=BOB)
    dm = body["event"]["channel"]

    await bot.post(body)
    reply = await bot.final(dm)

    assert reply.text == "echo: [bob] hi in private"
    assert reply.thread_ts is None


async def test_every_message_in_an_answer_channel(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any]
) -> None:
    async with running(fake_slack, slack_settings(slack_answer_channels=RANDOM)) as bot:
        await bot.post(fake_slack.message_event("anyone?", channel=RANDOM))
        reply = await bot.final(RANDOM)
        await bot.post(fake_slack.message_event("not here", channel=GENERAL))
        await bot.settle()

    assert (reply.text, reply.thread_ts) == ("echo: [alice] anyone?", None)
    assert fake_slack.messages[GENERAL] == []


async def test_listen_makes_a_channel_answer_everything_across_restarts(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any]
) -> None:
    settings = slack_settings(slack_admin_users=ALICE)
    by_bob = fake_slack.slash_command("/listen", "on", user=BOB)
    by_alice = fake_slack.slash_command("/listen", "on")
    async with running(fake_slack, settings) as bot:
        await bot.post(fake_slack.message_event("before"))
        for form in (by_bob, by_alice):
            await bot.post(form)
            await bot.settle()
        await bot.post(fake_slack.message_event("anyone?"))
        first = await bot.final(GENERAL, text="anyone?")
    async with running(fake_slack, settings) as bot:  # a new app on the same database file
        await bot.post(fake_slack.message_event("still there?"))
        second = await bot.final(GENERAL, text="still there?")

    def answer(form: dict[str, str]) -> str:
        (post,) = fake_slack.webhook_posts_for(form["response_url"])
        return str(post.body["text"])

    assert answer(by_bob) == say("admin_only", name="listen")
    assert answer(by_alice) == say("listen.on")
    assert [(m.text, m.thread_ts) for m in (first, second)] == [
        ("echo: [alice] anyone?", None),
        ("echo: [alice] still there?", None),
    ]
    assert len(fake_slack.messages[GENERAL]) == 2  # "before" was not answered


async def test_own_and_bot_messages_and_edits_are_ignored(
    bot: Running, fake_model: FakeModel
) -> None:
    fake = bot.fake
    own = fake.dm_event("from the bot itself")
    own["event"]["user"] = BOT_USER_ID
    other_bot = fake.dm_event("from another bot")
    other_bot["event"]["bot_id"] = "B0OTHER"
    edited = fake.dm_event("edited text")
    edited["event"]["subtype"] = "message_changed"
    deleted = fake.dm_event("")
    deleted["event"]["subtype"] = "message_deleted"

    statuses = [(await bot.post(body)).status for body in (own, other_bot, edited, deleted)]
    await bot.settle()

    assert statuses == [200] * 4
    assert fake_model.requests == []
    assert fake.all_messages() == []


async def test_allow_lists(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    settings = slack_settings(slack_allowed_channels=RANDOM, slack_allowed_users=ALICE)
    async with running(fake_slack, settings) as bot:
        await bot.post(fake_slack.app_mention_event("wrong channel", channel=GENERAL))
        await bot.post(fake_slack.app_mention_event("wrong person", channel=RANDOM, user=BOB))
        denied = await bot.post(fake_slack.slash_command("/ask", "hi", user=BOB, channel=RANDOM))
        await bot.post(fake_slack.app_mention_event("all good", channel=RANDOM))
        reply = await bot.final(RANDOM)
        await bot.settle()

    assert denied.text == say("not_allowed")
    assert reply.text == "echo: [alice] all good"
    assert len(fake_model.requests) == 1
    assert fake_slack.messages[GENERAL] == []


# ------------------------------------------------------------------------- never twice


async def test_retried_event_is_answered_once_also_after_restart(
    fake_slack: FakeSlack,
    slack_settings: Callable[..., Any],
    fake_model: FakeModel,
    database_url: str,
) -> None:
    settings = slack_settings(database_url=database_url)
    body = fake_slack.app_mention_event("only once")
    root = body["event"]["ts"]
    async with running(fake_slack, settings) as bot:
        await bot.post(body)
        await bot.final(GENERAL, root)
        retried = await bot.post(body, retry_num=1)
        await bot.settle()

    command = fake_slack.app_mention_event("/memory", thread_ts=root)
    async with running(fake_slack, settings) as bot:  # a new app on the same database file
        again = await bot.post(body, retry_num=2, retry_reason="http_error")
        await bot.post(command)
        await bot.settle()
        await bot.post(command, retry_num=1)
        await bot.settle()
        assert len(fake_slack.messages[GENERAL]) == 2
        assert fake_slack.messages[GENERAL][1].text.startswith("Stored since the last reset")
        # The thread is still Parley's after the restart.
        await bot.post(fake_slack.message_event("still there?", thread_ts=root))
        reply = await bot.final(GENERAL, root, text="still there?")

    assert (retried.status, again.status) == (200, 200)
    assert len(fake_model.requests) == 2
    assert reply.text == "echo: [alice] still there?"


async def test_retried_event_posts_nothing_not_even_a_placeholder(
    bot: Running, fake_model: FakeModel
) -> None:
    fake_model.script(Reply("thought about it", delay=0.5))
    body = bot.fake.app_mention_event("take your time")
    root = body["event"]["ts"]

    await bot.post(body)
    first = await bot.fake.wait_for(lambda: bot.fake.last_message(GENERAL), what="a placeholder")
    await bot.final(GENERAL, root, text="thought")
    await bot.post(body, retry_num=1)
    await bot.settle()

    assert first.texts[0] == PLACEHOLDER  # shown while the model was silent
    assert len(bot.fake.calls_to("chat.postMessage")) == 1
    assert bot.fake.calls_to("chat.delete") == []
    assert len(fake_model.requests) == 1


# ------------------------------------------------------------------------- HTTP security


async def test_forged_and_stale_signatures_are_rejected(
    bot: Running, fake_model: FakeModel
) -> None:
    forged = await bot.post(bot.fake.app_mention_event("hi"), secret="not-the-secret")
    stale = await bot.post(bot.fake.app_mention_event("hi"), timestamp=int(time.time()) - 600)
    unsigned_command = await bot.post(bot.fake.slash_command("/ask", "hi"), secret="forged")
    await bot.settle()

    assert (forged.status, stale.status, unsigned_command.status) == (401, 401, 401)
    assert fake_model.requests == []
    assert bot.fake.all_messages() == []


# ------------------------------------------------------------------------- slash commands


async def test_ask_is_acknowledged_at_once_and_answered_after(
    bot: Running, fake_model: FakeModel
) -> None:
    # "payload" in a form body trips bolt's interactivity detection unless worked around.
    fake_model.script(Reply("A *payload* is the data carried.", delay=1.5))
    command = bot.fake.slash_command("/ask", "what is a payload?", user=BOB, channel=RANDOM)

    resp = await bot.post(command)
    reply = await bot.final(RANDOM)

    assert resp.status == 200
    assert resp.elapsed < 1.5 < 3  # acknowledged before the model even answered
    assert resp.json() == {"response_type": "in_channel"}
    assert reply.text == "A _payload_ is the data carried."
    assert reply.thread_ts is None
    assert fake_model.requests[0]["messages"][-1]["content"] == "[bob] what is a payload?"


async def test_commands_answer_privately_and_respect_admins(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any]
) -> None:
    async with running(fake_slack, slack_settings(slack_admin_users=ALICE)) as bot:
        memory = fake_slack.slash_command("/memory", user=BOB)
        reset_by_bob = fake_slack.slash_command("/reset", user=BOB)
        reset_in_dm = fake_slack.slash_command(
            "/reset", user=BOB, channel=fake_slack.dm_channel(BOB).id
        )
        persona_by_alice = fake_slack.slash_command("/persona", "set You are terse.")
        empty_ask = await bot.post(fake_slack.slash_command("/ask", "  "))
        for form in (memory, reset_by_bob, reset_in_dm, persona_by_alice):
            assert (await bot.post(form)).status == 200
        await bot.settle()

    def answer(form: dict[str, str]) -> str:
        (post,) = fake_slack.webhook_posts_for(form["response_url"])
        return str(post.body["text"])

    assert empty_ask.text == say("command.usage", usage="/ask <question>")
    assert answer(memory).startswith("Stored since the last reset: 0 messages")
    assert answer(reset_by_bob) == say("admin_only", name="reset")
    assert answer(reset_in_dm) == say("reset.done")
    assert answer(persona_by_alice) == say("persona.set")
    assert fake_slack.all_messages() == []


# ------------------------------------------------------------------------- files


def file_message(fake: FakeSlack, text: str, *files: Json) -> Json:
    """A `file_share` message in Alice's DM with Parley."""
    return fake.message_event(text, channel=fake.dm_channel(ALICE).id, files=list(files))


async def test_shared_text_file_reaches_the_model(bot: Running, fake_model: FakeModel) -> None:
    notes = bot.fake.add_file(
        "notes.md", "# Plan\nThe launch code is 1234.", mimetype="text/markdown"
    )

    await bot.post(file_message(bot.fake, "", notes))
    await bot.final(bot.fake.dm_channel(ALICE).id)

    prompt = fake_model.requests[0]["messages"][-1]["content"]
    assert say("attach.file", name="notes.md", body="# Plan\nThe launch code is 1234.") in prompt
    assert bot.fake.file_downloads == [notes["id"]]


async def test_oversized_files_are_refused_with_a_notice(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    big = fake_slack.add_file("big.log", "x" * 5000)
    understated = fake_slack.add_file("understated.txt", "y" * 5000)
    understated["size"] = 10  # Slack's size is not trusted: the download stops at the limit
    async with running(fake_slack, slack_settings(attachment_max_bytes=1000)) as bot:
        await bot.post(file_message(fake_slack, "summarize these", big, understated))
        reply = await bot.final(fake_slack.dm_channel(ALICE).id)

    notice = say("attach.too_large", names="big.log, understated.txt", limit="1 kB")
    assert reply.text.startswith(f"_{notice}_")
    assert fake_slack.file_downloads == [understated["id"]]
    prompt = fake_model.requests[0]["messages"][-1]["content"]
    assert say("attach.not_read", name="big.log") in prompt and "yyyy" not in prompt


async def test_download_without_files_read_scope_gives_a_notice(
    bot: Running, fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    bot.fake.scopes = "app_mentions:read,chat:write,im:history"  # Slack sends its login page
    report = bot.fake.add_file("report.csv", "a,b\n1,2\n", mimetype="text/csv")

    await bot.post(file_message(bot.fake, "", report))
    reply = await bot.final(bot.fake.dm_channel(ALICE).id)

    assert reply.text == f"_{say('attach.refused', names='report.csv')}_"
    assert fake_model.requests == []
    assert "files:read" in caplog.text


# ------------------------------------------------------------------------- rendering


LONG_MARKDOWN = "\n\n".join(
    [
        f"## Part {n}\n\nThis is **important** and *subtle*; see [the docs](https://example.com/{n})."
        f"\n\n- first point\n- second point\n\n```python\n"
        + "\n".join(f"value_{n}_{i} = compute({i}) if a < b else **kwargs" for i in range(40))
        + "\n```"
        for n in range(6)
    ]
)


async def test_long_markdown_reply_is_converted_and_split(
    bot: Running, fake_model: FakeModel
) -> None:
    fake_model.script(Reply(LONG_MARKDOWN, chunk=2000))
    bot.fake.max_text_length = 1500  # stricter than the splitter's aim: Slack says msg_too_long
    root = (body := bot.fake.app_mention_event("write a lot"))["event"]["ts"]

    await bot.post(body)
    await bot.final(GENERAL, root, text="value_5_39")
    await bot.settle()

    parts = [m for m in bot.fake.messages[GENERAL] if not m.deleted]
    texts = [m.text for m in parts]
    assert len(parts) >= 5 and all(m.thread_ts == root for m in parts)
    assert all(len(text) <= 1500 and text.count("```") % 2 == 0 for text in texts)
    joined = "\n".join(texts)
    assert "*Part 0*" in joined and "## " not in joined
    assert "*important* and _subtle_" in joined and "<https://example.com/3|the docs>" in joined
    assert "• first point" in joined and "```python" not in joined
    assert "value_2_7 = compute(7) if a &lt; b else **kwargs" in joined  # code kept as written
    assert not any(text.endswith(CURSOR) for text in texts)
    assert any(call.error == "msg_too_long" for call in bot.fake.calls)


async def test_rate_limited_edit_is_retried_after_retry_after(
    bot: Running, fake_model: FakeModel
) -> None:
    fake_model.script(Reply("slow and steady " * 20, chunk=40, chunk_delay=0.05))
    bot.fake.fail_next("chat.update", "ratelimited", retry_after=1)
    body = bot.fake.app_mention_event("go")

    await bot.post(body)
    reply = await bot.final(GENERAL, body["event"]["ts"], text="steady")

    limited, *later = bot.fake.calls_to("chat.update")
    assert limited.error == "ratelimited"
    assert later and later[0].at - limited.at >= 1
    assert reply.text.strip() == ("slow and steady " * 20).strip()


async def test_model_failure_ends_with_an_error_message(
    bot: Running, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(401, "bad key"))
    body = bot.fake.app_mention_event("hello?")

    await bot.post(body)
    reply = await bot.final(GENERAL, body["event"]["ts"])

    assert reply.text == error_text(Outcome.AUTH)


# ------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_mention_and_command(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    settings = slack_settings(slack_app_token=fake_slack.app_token, slack_signing_secret=None)
    async with running(fake_slack, settings) as bot:
        body = fake_slack.app_mention_event("over the socket")
        ack = await fake_slack.send_socket_event(body)
        reply = await bot.final(GENERAL, body["event"]["ts"])
        # A reconnect re-delivers the event: still one answer.
        await fake_slack.socket_disconnect()
        await fake_slack.send_socket_event(body, retry_attempt=1, retry_reason="timeout")
        command_ack = await fake_slack.send_socket_command(
            fake_slack.slash_command("/ask", "a payload question", channel=RANDOM)
        )
        answer = await bot.final(RANDOM)
        await bot.settle()

    assert bot.adapter.address == "socket-mode"
    assert ack.payload is None and ack.elapsed < 1
    assert reply.text == "echo: [alice] over the socket"
    assert command_ack.payload == {"response_type": "in_channel"}
    assert answer.text == "echo: [alice] a payload question"
    assert len(fake_model.requests) == 2


# ------------------------------------------------------------------------- configuration


def test_slack_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        load_settings()

    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("SLACK_API_URL", "https://slack.example/api")
    monkeypatch.setenv("PARLEY_SLACK_ADMIN_USERS", "U1, U2")
    settings = load_settings()

    section = settings.section(SlackSettings)
    assert section.slack_api_url == "https://slack.example/api/"
    assert section.slack_admin_users == {"U1", "U2"}
    assert [adapter.name for adapter in configured_adapters(settings)] == ["slack"]
