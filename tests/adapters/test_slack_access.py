"""Slack DMs and privacy, end to end through the real SlackAdapter and the fake Slack: DMs switched
off, and workspace-wide recall that never carries a DM or a private channel into another
conversation (also when the kind is only learnt from conversations.info)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.adapters.test_slack import running, slack_settings
from tests.fakes.model_server import FakeModel
from tests.fakes.slack_fixtures import fake_slack
from tests.fakes.slack_server import BOB, GENERAL, PRIVATE, RANDOM, FakeSlack
from tests.helpers import reply_prompt

__all__ = ["fake_slack", "slack_settings"]  # fixtures, used by name


async def test_dms_switched_off_are_refused_once_without_a_model_call(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    async with running(fake_slack, slack_settings(slack_dms=False)) as bot:
        dm = fake_slack.dm_channel(BOB).id
        await bot.post(fake_slack.dm_event("hello?", user=BOB))
        await bot.settle()
        await bot.post(fake_slack.dm_event("anyone?", user=BOB))
        command = fake_slack.slash_command("/memory", user=BOB, channel=dm)
        refused = await bot.post(command)
        await bot.settle()
        mention = fake_slack.app_mention_event("hi in a channel", user=BOB)
        await bot.post(mention)
        await bot.final(GENERAL, mention["event"]["ts"], text="echo:")

    texts = [message.text for message in fake_slack.messages[dm]]
    assert len(texts) == 1 and "direct messages" in texts[0]  # said once
    assert "direct messages" in refused.text
    assert fake_slack.webhook_posts_for(command["response_url"]) == []
    assert len(fake_model.requests) == 1  # only the channel mention reached the model


async def test_workspace_recall_never_draws_from_dms_or_private_channels(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    settings = slack_settings(
        recall_scope="workspace", context_tokens=2000, slack_answer_channels=RANDOM
    )
    async with running(fake_slack, settings) as bot:
        # The private channel is met through app_mention, which does not say its kind.
        secret = fake_slack.app_mention_event("the vault combination is 9876", channel=PRIVATE)
        await bot.post(secret)
        await bot.final(PRIVATE, secret["event"]["ts"], text="echo:")
        await bot.post(fake_slack.dm_event("my locker combination is 4321", user=BOB))
        await bot.final(fake_slack.dm_channel(BOB).id, text="echo:")
        await bot.post(
            fake_slack.message_event("the combination lock brand is Acme", channel=RANDOM)
        )
        await bot.final(RANDOM, text="Acme")

        question = "which combination lock brand and number?"
        await bot.post(fake_slack.app_mention_event(question))
        await asyncio.wait_for(bot.settle(), 5)
        prompt = reply_prompt(fake_model, question)

    assert "9876" not in prompt and "4321" not in prompt
    assert "Acme" in prompt  # a public channel is still recalled across the workspace


async def test_a_redelivered_command_is_recognised_by_the_same_claim_as_messages(
    fake_slack: FakeSlack, slack_settings: Callable[..., Any], fake_model: FakeModel
) -> None:
    async with running(fake_slack, slack_settings()) as bot:
        command = fake_slack.slash_command("/memory", user=BOB)
        first, again = await bot.post(command), await bot.post(command)
        await bot.settle()
    assert first.status == again.status == 200
    assert len(fake_slack.webhook_posts_for(command["response_url"])) == 1
