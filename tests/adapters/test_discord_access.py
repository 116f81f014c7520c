"""Discord DMs and privacy, end to end through the real client and the fake Discord: DMs switched
off, DMs only for members of the allowed servers, and workspace-wide recall that never carries
a DM or a private channel into another conversation."""

from __future__ import annotations

import asyncio

import pytest

from tests.adapters.test_discord import FAST, bot, done, last_prompt
from tests.conftest import SettingsFactory
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.model_server import FakeModel

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(15)


async def quiet(fake: FakeDiscord, channel: int, count: int) -> None:
    """Give the bot time to (wrongly) answer, then check it posted `count` messages there."""
    await asyncio.sleep(0.5)
    assert len(fake.messages[channel]) == count


async def test_dms_switched_off_are_refused_once_without_a_model_call(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake = fake_discord
    async with bot(fake, make_settings(stream_interval=FAST, discord_dms=False)):
        dm = fake.dm_channel("bob")
        await fake.send_message(dm, "hello?", author="bob")
        refusal = await fake.wait_for_message(dm, lambda m: True)
        assert "direct messages" in refusal.content
        await fake.send_message(dm, "still there?", author="bob")
        await quiet(fake, dm, 1)  # said once
        interaction = await fake.send_interaction("memory", {}, user="bob", channel_id=dm)
        await fake.wait_for(lambda: interaction.callback_body)
        assert interaction.callback_body is not None
        assert "direct messages" in interaction.callback_body["data"]["content"]
    assert fake_model.requests == []


async def test_with_a_server_list_dms_need_a_member_of_an_allowed_server(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake = fake_discord
    fake.add_user("stranger", member=False)
    settings = make_settings(stream_interval=FAST, discord_guilds={str(fake.guild_id)})
    async with bot(fake, settings):
        member_dm, stranger_dm = fake.dm_channel("bob"), fake.dm_channel("stranger")
        await fake.send_message(stranger_dm, "let me in", author="stranger")
        refusal = await fake.wait_for_message(stranger_dm, lambda m: True)
        assert "members of the servers" in refusal.content
        assert fake.member_lookups >= 1  # asked Discord: not in discord.py's member cache

        await fake.send_message(member_dm, "hello", author="bob")
        reply = await fake.wait_for_message(member_dm, done)
        assert reply.content == "echo: [bob] hello"
        await quiet(fake, stranger_dm, 1)
    assert ["let me in" not in str(body) for body in fake_model.requests] == [True]


async def test_workspace_recall_never_draws_from_dms_or_private_channels(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake = fake_discord
    fake.channels[fake.channel_id("random")].private = True
    general, random = fake.channel_id("general"), fake.channel_id("random")
    settings = make_settings(stream_interval=FAST, recall_scope="workspace", context_tokens=2000)
    async with bot(fake, settings):
        bob_dm, alice_dm = fake.dm_channel("bob"), fake.dm_channel("alice")
        await fake.send_message(bob_dm, "my locker combination is 4321", author="bob")
        await fake.wait_for_message(bob_dm, done)
        await fake.send_message(
            random, "the vault combination is 9876", author="bob", mentions_bot=True
        )
        await fake.wait_for_message(random, done)
        await fake.send_message(fake.channel_id("help"), "the combination lock brand is Acme")
        await fake.send_message(
            fake.channel_id("help"), "noted: lock brand Acme", mentions_bot=True
        )
        await fake.wait_for_message(fake.channel_id("help"), done)

        await fake.send_message(alice_dm, "what is the locker combination?", author="alice")
        await fake.wait_for_message(alice_dm, done)
        assert "4321" not in str(last_prompt(fake_model))

        await fake.send_message(general, "which combination lock brand?", mentions_bot=True)
        await fake.wait_for_message(general, done)
        prompt = str(last_prompt(fake_model))
        assert "9876" not in prompt and "4321" not in prompt
        assert "Acme" in prompt  # a public channel is still recalled across the server
