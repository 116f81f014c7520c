"""Self-test of FakeSlack: the real slack-bolt AsyncApp over HTTP and Socket Mode, offline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_fixtures import fake_slack, slack_client  # noqa: F401
from tests.fakes.slack_server import ALICE, BOB, GENERAL, FakeSlack, serve_aiohttp

RESPOND_DELAY = 1.0  # the /ask listener works this long after acking (ack timings share 2 cores)


def build_app(fake: FakeSlack) -> AsyncApp:
    """A tiny bolt app: echoes mentions in a thread, answers /ask through response_url."""
    client = AsyncWebClient(base_url=fake.base_url, token=fake.bot_token)
    # Passing token= as well only makes bolt warn that the client's token wins.
    app = AsyncApp(client=client, signing_secret=fake.signing_secret)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text=f"echo: {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    @app.command("/ask")
    async def on_ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack(text="On it")
        await asyncio.sleep(RESPOND_DELAY)
        await respond(text=f"answer: {command['text']}")

    return app


@pytest_asyncio.fixture
async def events_url(fake_slack: FakeSlack) -> AsyncIterator[str]:  # noqa: F811
    async with serve_aiohttp(build_app(fake_slack).web_app()) as root:
        yield f"{root}/slack/events"


@pytest_asyncio.fixture
async def socket_app(fake_slack: FakeSlack) -> AsyncIterator[AsyncSocketModeHandler]:  # noqa: F811
    # The handler's SocketModeClient calls apps.connections.open through app.client.
    handler = AsyncSocketModeHandler(build_app(fake_slack), app_token=fake_slack.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
    try:
        yield handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


# ----------------------------------------------------------------------------- HTTP mode


async def test_http_mention_is_answered_in_thread(fake_slack: FakeSlack, events_url: str) -> None:  # noqa: F811
    event = fake_slack.app_mention_event("hello there")

    resp = await fake_slack.post_signed(events_url, event)

    assert resp.status == 200
    reply = await fake_slack.wait_for(lambda: fake_slack.last_message(GENERAL))
    assert reply.thread_ts == event["event"]["ts"]
    assert reply.text == f"echo: <@{fake_slack.bot_user_id}> hello there"
    assert [c.method for c in fake_slack.calls] == ["auth.test", "chat.postMessage"]
    assert [m.user for m in fake_slack.thread(GENERAL, reply.root_ts)] == [ALICE, reply.user]


async def test_http_rejects_forged_and_stale_signatures(
    fake_slack: FakeSlack,  # noqa: F811
    events_url: str,
) -> None:
    forged = await fake_slack.post_signed(
        events_url, fake_slack.app_mention_event("hi"), secret="not-the-secret"
    )
    stale = await fake_slack.post_signed(
        events_url, fake_slack.app_mention_event("hi"), timestamp=int(time.time()) - 600
    )

    assert (forged.status, stale.status) == (401, 401)
    assert fake_slack.calls == []


async def test_http_slash_command_acks_fast_then_responds(
    fake_slack: FakeSlack,  # noqa: F811
    events_url: str,
) -> None:
    command = fake_slack.slash_command("/ask", "why is the sky blue?", user=BOB)

    resp = await fake_slack.post_signed(events_url, command)

    assert resp.status == 200
    assert resp.text == "On it"  # ack(text=...) is a plain-text body over HTTP
    assert resp.elapsed < min(RESPOND_DELAY, 3.0)
    post = await fake_slack.wait_for(lambda: fake_slack.webhook_posts_for(command["response_url"]))
    assert post[0].body["text"] == "answer: why is the sky blue?"


async def test_http_retry_headers_are_sent(fake_slack: FakeSlack, events_url: str) -> None:  # noqa: F811
    event = fake_slack.app_mention_event("again")

    resp = await fake_slack.post_signed(events_url, event, retry_num=1)

    assert resp.status == 200  # this app does not deduplicate, so it answers again
    await fake_slack.wait_for(lambda: fake_slack.last_message(GENERAL))


# ----------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_event_is_acked_and_answered(
    fake_slack: FakeSlack,  # noqa: F811
    socket_app: AsyncSocketModeHandler,
) -> None:
    event = fake_slack.app_mention_event("over the socket")

    ack = await fake_slack.send_socket_event(event)

    assert ack.payload is None
    reply = await fake_slack.wait_for(lambda: fake_slack.last_message(GENERAL))
    assert reply.thread_ts == event["event"]["ts"]
    assert fake_slack.calls[0].method == "apps.connections.open"


async def test_socket_mode_slash_command_ack_carries_payload(
    fake_slack: FakeSlack,  # noqa: F811
    socket_app: AsyncSocketModeHandler,
) -> None:
    command = fake_slack.slash_command("/ask", "ping")

    ack = await fake_slack.send_socket_command(command)

    assert ack.payload == {"text": "On it"}
    assert ack.elapsed < RESPOND_DELAY
    post = await fake_slack.wait_for(lambda: fake_slack.webhook_posts_for(command["response_url"]))
    assert post[0].body["text"] == "answer: ping"


async def test_socket_mode_reconnects_after_disconnect(
    fake_slack: FakeSlack,  # noqa: F811
    socket_app: AsyncSocketModeHandler,
) -> None:
    first = await fake_slack.wait_socket_connected()

    second = await fake_slack.socket_disconnect()

    assert second.index == first.index + 1
    await fake_slack.wait_for(lambda: not first.open)
    ack = await fake_slack.send_socket_event(fake_slack.app_mention_event("still there?"))
    assert ack.connection == second.index
    await fake_slack.wait_for(lambda: fake_slack.last_message(GENERAL))
    assert len(fake_slack.calls_to("apps.connections.open")) == 2


# ----------------------------------------------------------------------------- Web API


async def test_rate_limit_fault_then_recovery(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=7)

    with pytest.raises(SlackApiError) as caught:
        await slack_client.chat_postMessage(channel=GENERAL, text="one")
    await slack_client.chat_postMessage(channel=GENERAL, text="two")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert [c.error for c in fake_slack.calls] == ["ratelimited", None]
    assert [m.text for m in fake_slack.messages[GENERAL]] == ["two"]


async def test_text_limits_and_update_history(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    posted = await slack_client.chat_postMessage(channel=GENERAL, text="draft", mrkdwn=False)
    ts = posted["ts"]
    await slack_client.chat_update(channel=GENERAL, ts=ts, text="draft, longer")
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await slack_client.chat_update(channel=GENERAL, ts=ts, text="x" * 4001)

    (msg,) = fake_slack.messages[GENERAL]
    assert msg.texts == ["draft", "draft, longer"]
    assert msg.mrkdwn is False
    assert msg.edits[0].at >= msg.posted_at


async def test_form_encoded_calls_and_lookups(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    form = {"channel": ALICE, "text": "hi", "blocks": json.dumps(blocks)}

    await slack_client.api_call("chat.postMessage", data=form)
    user = await slack_client.users_info(user=BOB)
    channel = await slack_client.conversations_info(channel=GENERAL)
    bot = await slack_client.bots_info(bot=fake_slack.bot_id)

    dm = fake_slack.dm_channel(ALICE).id
    assert fake_slack.messages[dm][0].blocks == blocks
    assert user["user"]["name"] == "bob"
    assert channel["channel"]["name"] == "general"
    assert bot["bot"]["user_id"] == fake_slack.bot_user_id


async def test_thread_replies_include_user_messages(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    root = fake_slack.message_event("question")["event"]
    fake_slack.message_event("follow-up", user=BOB, thread_ts=root["ts"])
    await slack_client.chat_postMessage(channel=GENERAL, text="answer", thread_ts=root["ts"])

    replies = await slack_client.conversations_replies(channel=GENERAL, ts=root["ts"])

    assert [m["text"] for m in replies["messages"]] == ["question", "follow-up", "answer"]


async def test_bad_token_and_unknown_method(fake_slack: FakeSlack) -> None:  # noqa: F811
    client = AsyncWebClient(base_url=fake_slack.base_url, token="xoxb-wrong")

    with pytest.raises(SlackApiError, match="invalid_auth"):
        await client.auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        await client.api_call("chat.teleport")

    assert fake_slack.unhandled == ["chat.teleport"]


async def test_shared_file_download_needs_the_bot_token(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    shared = fake_slack.add_file("notes.txt", "remember the milk")
    event = fake_slack.message_event("see file", files=[shared])["event"]

    info = await slack_client.files_info(file=event["files"][0]["id"])
    url = info["file"]["url_private_download"]
    async with ClientSession() as session:
        auth = {"Authorization": f"Bearer {fake_slack.bot_token}"}
        async with session.get(url, headers=auth) as resp:
            content = await resp.text()
        async with session.get(url) as resp:
            login_page_type = resp.content_type

    assert event["subtype"] == "file_share"
    assert content == "remember the milk"
    assert login_page_type == "text/html"
    assert fake_slack.file_downloads == [shared["id"]]


async def test_wait_for_is_bounded(fake_slack: FakeSlack) -> None:  # noqa: F811
    with pytest.raises(TimeoutError, match="nothing posted"):
        await fake_slack.wait_for(lambda: fake_slack.all_messages(), 0.05, what="nothing posted")


async def test_ephemeral_reactions_delete_and_webhook_limit(
    fake_slack: FakeSlack,  # noqa: F811
    slack_client: AsyncWebClient,  # noqa: F811
) -> None:
    await slack_client.chat_postEphemeral(channel=GENERAL, user=BOB, text="only you")
    posted = await slack_client.chat_postMessage(channel=GENERAL, text="bye")
    await slack_client.reactions_add(channel=GENERAL, timestamp=posted["ts"], name="eyes")
    await slack_client.chat_delete(channel=GENERAL, ts=posted["ts"])
    response_url = fake_slack.slash_command("/ask")["response_url"]
    async with ClientSession() as session:
        statuses = []
        for n in range(fake_slack.webhook_post_limit + 1):
            async with session.post(response_url, json={"text": str(n)}) as resp:
                statuses.append(resp.status)

    assert fake_slack.ephemerals[0].ephemeral_to == BOB
    (msg,) = fake_slack.messages[GENERAL]
    assert (msg.reactions, msg.deleted) == (["eyes"], True)
    assert statuses == [200] * fake_slack.webhook_post_limit + [404]
