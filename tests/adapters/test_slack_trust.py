"""Slack trust rules, end to end through the real adapter: files only from Slack's own host (the
token goes nowhere else), no mass mentions in anything posted, a hardened HTTP endpoint."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.texts import say
from tests.adapters.test_slack import Running, bot, file_message, running, slack_settings
from tests.fakes.elsewhere import elsewhere
from tests.fakes.model_server import FakeModel, Reply
from tests.fakes.search_server import FakeSearch
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import ALICE, GENERAL, FakeSlack

__all__ = ["bot", "slack_settings"]  # fixtures, used by name

Json = dict[str, Any]


def remote_file(name: str, url: str) -> Json:
    """A Slack "remote file": its URL points wherever its creator said."""
    return {
        "id": "F0REMOTE",
        "name": name,
        "mimetype": "text/plain",
        "size": 30,
        "mode": "external",
        "is_external": True,
        "url_private": url,
        "url_private_download": url,
    }


async def test_files_elsewhere_get_no_token_and_a_notice(
    bot: Running, fake_model: FakeModel
) -> None:
    async with elsewhere() as other:
        hosted = bot.fake.add_file("hosted.txt", "from slack")
        redirected = bot.fake.add_file("moved.txt", "never read")
        bot.fake.file_redirects[redirected["id"]] = other.url("/stolen")
        remote = remote_file("remote.txt", other.url("/remote.txt"))
        await bot.post(file_message(bot.fake, "read these", hosted, redirected, remote))
        reply = await bot.final(bot.fake.dm_channel(ALICE).id)

    assert other.hits == []  # neither the remote file nor the redirect target was asked
    assert bot.fake.file_downloads == [hosted["id"]]
    assert say("attach.foreign", names="moved.txt, remote.txt") in reply.text
    prompt = fake_model.requests[0]["messages"][-1]["content"]
    assert "from slack" in prompt and "elsewhere" not in prompt


async def test_file_host_must_resolve_to_a_public_address(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    # Slack's API configured by name: its file host is then checked like any resolved name.
    api = fake_slack.base_url.replace("127.0.0.1", "localhost")
    notes = fake_slack.add_file("notes.txt", "private")
    notes["url_private_download"] = notes["url_private"] = notes["url_private"].replace(
        "127.0.0.1", "localhost"
    )
    async with running(fake_slack, slack_settings(slack_api_url=api)) as bot:
        await bot.post(file_message(fake_slack, "read it", notes))
        reply = await bot.final(fake_slack.dm_channel(ALICE).id)

    assert fake_slack.file_downloads == []
    assert say("attach.foreign", names="notes.txt") in reply.text


# ------------------------------------------------------------------------- mass mentions


async def test_nothing_posted_can_ping_a_crowd(
    fake_slack: FakeSlack,
    slack_settings: Callable[..., Any],
    fake_model: FakeModel,
    fake_search: FakeSearch,
) -> None:
    fake_search.add("[All](!channel) <!here> news", "https://example.com/a", "A snippet.")
    fake_model.script(
        Reply("Hi [all](!everyone), <!channel> [team](!subteam^S1) [x](javascript:alert(1))"),
        Reply("See [the docs](https://example.com/d) or [mail](mailto:a@example.com) [1]."),
        Reply("Read it."),
    )
    settings = slack_settings(search_provider="searxng", search_url=fake_search.base_url)
    doc = fake_slack.add_file("[hi](!here).md", "Plans.", mimetype="text/markdown")
    async with running(fake_slack, settings) as bot:
        await bot.post(fake_slack.app_mention_event("hello"))
        first = await bot.final(GENERAL)
        await bot.post(fake_slack.slash_command("/search", "news", channel=GENERAL))
        await bot.settle()
        await bot.post(file_message(fake_slack, "", doc))
        await bot.settle()

    posted = [
        text for m in fake_slack.all_messages() for text in (m.text, *(e.text for e in m.edits))
    ]
    assert posted and not any("<!" in text for text in posted)
    assert "<!" not in str([p.body for p in fake_slack.webhook_posts])
    assert "&lt;!channel&gt;" in first.text and "all (!everyone)" in first.text
    joined = "\n".join(posted)
    assert "<https://example.com/d|the docs>" in joined and "<mailto:a@example.com|mail>" in joined
    assert "All (!channel) &lt;!here&gt; news" in joined  # the search result's title
    assert "hi (!here).md" in joined  # the document's name


# ------------------------------------------------------------------------- HTTP endpoint


def signed(fake: FakeSlack, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    # By hand: slack_sdk's helper cannot sign a body that is not UTF-8.
    mac = hmac.new(fake.signing_secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    signature = f"v0={mac.hexdigest()}"
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize(
    ("body", "stamp", "status"),
    [
        (b'{"type": "event_callback", "event": "x"}', "not-a-number", 401),
        (b'{"type": "event_callback", "event": "x"}', "", 401),
        (b'{"type": "event_callback", "event": "x"}', "1e999", 401),
        (b"{not json", None, 400),
        (b"\xff\xfe\x00bad", None, 400),
        (b'["a", "list"]', None, 400),
        (b'{"type": "event_callback", "event": "x"}', None, 400),
        (b'{"type": "event_callback", "event": {"type": "message", "user": 5}}', None, 400),
    ],
)
async def test_malformed_requests_get_a_4xx_never_a_500(
    bot: Running,
    fake_model: FakeModel,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    stamp: str | None,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ClientSession() as session:
        response = await session.post(
            bot.adapter.address, data=body, headers=signed(bot.fake, body, stamp)
        )
        text = await response.text()
    await bot.settle()

    assert response.status == status
    assert "Traceback" not in text and "Traceback" not in caplog.text
    assert fake_model.requests == []


async def test_rejected_request_is_logged_without_its_body(
    bot: Running, fake_model: FakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    event = bot.fake.app_mention_event("the vault code is 8841")
    response = await bot.post(event, secret="forged")

    assert response.status == 401
    assert "8841" not in caplog.text
    assert "signature" in caplog.text.lower()
