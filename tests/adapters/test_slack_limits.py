"""Limits, moderation and `/usage` on Slack, end to end: the real SlackAdapter against FakeSlack
and the fake chat API, on SQLite and PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.texts import say
from tests.adapters.test_slack import running, slack_settings  # noqa: F401
from tests.fakes.model_server import FakeModel
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import ALICE, BOB, GENERAL, FakeSlack


async def test_limits_moderation_and_usage_on_slack(
    fake_slack: FakeSlack,
    slack_settings: Callable[..., Any],
    fake_model: FakeModel,
    database_url: str,
    tmp_path: Path,
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("바보\n", encoding="utf-8")
    fake_model.usage = (300, 20)
    settings = slack_settings(
        database_url=database_url,
        user_messages_per_minute=2,
        blocked_words=words,
        slack_admin_users=ALICE,
    )
    async with running(fake_slack, settings) as bot:
        asked = []
        for text in ("first question", "second question", "third question", "넌 바보야"):
            body = fake_slack.app_mention_event(text, user=BOB)
            asked.append(body["event"]["ts"])
            await bot.post(body)
            await bot.final(GENERAL, asked[-1])
        blocked = fake_slack.app_mention_event("넌 바보야", user=ALICE)
        await bot.post(blocked)
        await bot.final(GENERAL, blocked["event"]["ts"])
        own = fake_slack.slash_command("/usage", user=BOB)
        channel = fake_slack.slash_command("/usage", user=ALICE)
        for form in (own, channel):
            assert (await bot.post(form)).status == 200
        await bot.settle()

    replies = [fake_slack.thread(GENERAL, ts)[-1].text for ts in asked]
    assert replies[0].startswith("echo:") and replies[1].startswith("echo:")
    assert re.search(r"You can write again in \d+ s\.", replies[2])
    assert re.search(r"You can write again in \d+ s\.", replies[3])  # limited before moderated
    assert fake_slack.thread(GENERAL, blocked["event"]["ts"])[-1].text == say("moderation.blocked")
    assert len(fake_model.requests) == 2

    def answer(form: dict[str, str]) -> str:
        (post,) = fake_slack.webhook_posts_for(form["response_url"])
        return str(post.body["text"])

    assert "today (UTC): 2 messages, 640 tokens (600 prompt + 40 reply)" in answer(own)
    assert f"slack:{BOB}" in answer(channel) and "This channel" in answer(channel)
