"""Self-test of the fake Discord: a real discord.py bot logs in, chats and runs a slash command."""

from __future__ import annotations

import asyncio
import gc
import io
import warnings
from collections.abc import Iterator

import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import FakeDiscord, FakeFile

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import


class EchoBot(commands.Bot):
    """Tiny bot: replies to mentions and DMs (echoing text attachments), has /ping."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.seen: list[discord.Message] = []
        self.resumed = asyncio.Event()
        self.tree.add_command(app_commands.Command(name="ping", description="Ping", callback=ping))

    async def setup_hook(self) -> None:
        await self.tree.sync()  # once, at startup (not in on_ready)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)
        if message.author.bot:
            return
        is_dm = message.guild is None
        if not is_dm and (self.user is None or self.user not in message.mentions):
            return
        async with message.channel.typing():
            text = message.content
            for attachment in message.attachments:
                text += " | " + (await attachment.read()).decode()
            reply = await message.reply("…", allowed_mentions=discord.AllowedMentions.none())
        await reply.edit(content=f"echo: {text}")


async def ping(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    await interaction.edit_original_response(content="pong")
    await interaction.followup.send("and a followup")


@pytest.fixture(autouse=True)
def no_unclosed_resources(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()  # unclosed aiohttp sessions/connectors warn from __del__
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    for other in (w for w in caught if w not in leaks):  # let pytest report the rest
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    assert leaks == []
    assert "Unclosed" not in caplog.text


@pytest.mark.timeout(10)
async def test_mention_reply_and_slash_command(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    general = fake.channel_id("general")
    bot = EchoBot()
    async with fake.running(bot):
        assert fake.has_message_content_intent
        assert [s.guild_id for s in fake.command_syncs] == [None]

        asked = await fake.send_message(general, "hello", author="bob", mentions_bot=True)
        reply = await fake.wait_for_message(general, lambda m: bool(m.edits))
        assert reply.content == f"echo: {fake.bot_user.mention} hello"
        assert reply.reference_id == asked
        assert reply.allowed_mentions is not None and reply.allowed_mentions["parse"] == []
        assert len(reply.edits) == 1
        assert [t.channel_id for t in fake.typing_calls] == [general]

        interaction = await fake.send_interaction("ping", channel_id=general, user="alice")
        await fake.wait_for(lambda: interaction.followups)
        assert interaction.callback_type == 5
        assert interaction.original is not None and interaction.original.content == "pong"
        assert interaction.followups[0].content == "and a followup"
        assert interaction.ack_delay is not None and interaction.ack_delay < 3

    assert len(fake.command_syncs) == 1
    assert len(fake.messages[general]) == 1
    assert fake.unhandled == []


@pytest.mark.timeout(10)
async def test_dm_attachment_thread_and_rate_limit(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = EchoBot()
    async with fake.running(bot):
        dm = fake.dm_channel("bob")
        fake.fail_next("POST", f"/channels/{dm}/messages", status=429, retry_after=0.05)
        await fake.send_message(
            dm, "see file", author="bob", attachments=[FakeFile("notes.txt", "file body")]
        )
        reply = await fake.wait_for_message(dm, lambda m: bool(m.edits))
        assert reply.content == "echo: see file | file body"
        posts = [
            r.status
            for r in fake.requests
            if r.method == "POST" and r.path.endswith(f"{dm}/messages")
        ]
        assert posts == [429, 200]

        thread = await fake.create_thread("questions", owner="alice")
        await fake.wait_for(lambda: bot.get_channel(thread) is not None)
        await fake.send_message(thread, "in thread", mentions_bot=True)
        in_thread = await fake.wait_for_message(thread, lambda m: bool(m.edits))
        assert in_thread.content.endswith("in thread")

        await fake.request_reconnect()
        await asyncio.wait_for(bot.resumed.wait(), 5)
    assert fake.unhandled == []


@pytest.mark.timeout(10)
async def test_content_hidden_without_message_content_intent(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    bot = EchoBot(message_content=False)
    async with fake.running(bot):
        assert not fake.has_message_content_intent
        await fake.send_message(fake.channel_id("random"), "secret")
        await fake.wait_for(lambda: bot.seen)
        assert bot.seen[0].content == ""


async def test_patches_are_restored() -> None:
    base = discord.http.Route.BASE
    async with FakeDiscord() as fake:
        assert f"http://127.0.0.1:{fake.port}/api/v10" == discord.http.Route.BASE
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("ws://127.0.0.1")
    assert base == discord.http.Route.BASE


@pytest.mark.timeout(10)
async def test_bot_side_rest_surface(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    general = fake.channel_id("general")
    bot = commands.Bot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05
    )
    guild = discord.Object(fake.guild_id)

    @bot.tree.command(name="ask", description="Ask", guild=guild)
    async def ask(interaction: discord.Interaction, prompt: str, loud: bool = False) -> None:
        await interaction.response.send_message(f"{prompt}!" if loud else prompt)

    async with fake.running(bot):
        await bot.tree.sync(guild=guild)
        assert [s.guild_id for s in fake.command_syncs] == [fake.guild_id]

        interaction = await fake.send_interaction("ask", {"prompt": "hi", "loud": True})
        await fake.wait_for(lambda: interaction.original)
        assert interaction.callback_type == 4
        assert interaction.original is not None and interaction.original.content == "hi!"

        channel = bot.get_channel(general)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("long", file=discord.File(io.BytesIO(b"data"), "out.txt"))
        assert fake.messages[general][-1].files[0].raw == b"data"
        assert await sent.attachments[0].read() == b"data"
        thread = await sent.create_thread(name="follow-up")
        assert thread.id == sent.id and fake.threads_created[0].parent_id == general
        await thread.send("in thread")

        user_msg = await fake.send_message(general, "earlier")
        fetched = await channel.fetch_message(user_msg)
        assert fetched.content == ""  # no message_content intent, not a mention
        with pytest.raises(discord.NotFound):
            await channel.fetch_message(1)
        history = [m.id async for m in channel.history(limit=2)]
        assert history == [user_msg, sent.id]

        dm_user = await bot.fetch_user(fake.user("bob").id)  # members intent off: not cached
        await dm_user.send("psst")
        assert fake.messages[fake.dm_channel("bob")][-1].content == "psst"

        await fake.delete_message(general, user_msg)
        with pytest.raises(discord.HTTPException):
            await channel.send(
                "reply", reference=discord.MessageReference(message_id=user_msg, channel_id=general)
            )
        with pytest.raises(discord.HTTPException):
            await channel.send("x" * 2001)
    assert fake.unhandled == []
