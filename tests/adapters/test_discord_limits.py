"""Limits, reply moderation and `/usage` on Discord, end to end: the real discord.py client
against the fake Discord and the fake model."""

from __future__ import annotations

import pytest

from bot.texts import say
from tests.adapters.test_discord import bot, done
from tests.conftest import SettingsFactory
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.model_server import FakeModel, Reply

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(20)


async def test_daily_tokens_reply_moderation_and_usage_on_discord(
    fake_discord: FakeDiscord,
    fake_model: FakeModel,
    make_settings: SettingsFactory,
    database_url: str,
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    fake_model.usage = (700, 300)
    fake_model.flagged_words = {"punch"}
    fake_model.script(Reply("I would punch it."))
    settings = make_settings(
        database_url=database_url,
        stream_interval=0.2,
        user_tokens_per_day=1000,
        moderation="endpoint",
        moderate_replies=True,
    )
    async with bot(fake, settings):
        await fake.send_message(general, "what now?", author="bob", mentions_bot=True)
        withheld = await fake.wait_for_message(general, done)
        await fake.send_message(general, "and now?", author="bob", mentions_bot=True)
        limited = await fake.wait_for_message(general, lambda m: done(m) and m.id != withheld.id)
        usage = await fake.send_interaction("usage", user="bob")
        await fake.wait_for(lambda: usage.original is not None and done(usage.original))

    assert withheld.content == say("moderation.reply.flagged", categories="harassment")
    assert all("punch" not in str(edit.body) for edit in withheld.edits)  # never streamed
    assert "You've used your 1,000 tokens for today (UTC)" in limited.content
    assert "00:00 UTC" in limited.content
    assert len(fake_model.requests) == 1
    assert usage.original is not None
    assert (
        "today (UTC): 1 messages, 1,000 tokens (700 prompt + 300 reply)" in usage.original.content
    )
    assert "Daily limit: 1,000 of 1,000 tokens used." in usage.original.content
