"""The Discord bot: decides which messages to answer, streams replies, runs slash commands."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord.inbound import author, conversation_key, download, plain_text
from adapters.discord.policy import Policy
from adapters.discord.slash import add_commands
from adapters.discord.surface import ChannelSurface, InteractionSurface
from bot.core import Parley
from bot.messages import Command, ConversationKey, Inbound
from bot.settings import DEFAULT_DISCORD_API_URL, ConfigError, Settings
from bot.streaming import Surface, deliver
from bot.texts import say

log = logging.getLogger(__name__)

# On a mention, at most this many earlier channel messages are caught up on (recorded).
CATCH_UP_LIMIT = 25
_CONVERSATION_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class Trigger(Enum):
    DM = "dm"
    MENTION = "mention"
    REPLY = "reply"  # to one of Parley's messages
    CHANNEL = "channel"  # an answer-everything channel
    THREAD = "thread"  # a thread Parley takes part in


def intents() -> discord.Intents:
    chosen = discord.Intents.default()
    chosen.message_content = True  # privileged: without it guild messages arrive empty
    return chosen


class ParleyClient(discord.Client):
    def __init__(
        self, parley: Parley, settings: Settings, *, sync_commands: bool = False, **options: Any
    ) -> None:
        # Parley has no voice: skip discord.py's warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=intents(), **options)
        self.parley = parley
        self.settings = settings
        self.policy = Policy(settings)
        self.sync_commands = sync_commands
        self.tree: app_commands.CommandTree[ParleyClient] = app_commands.CommandTree(self)
        add_commands(self.tree, parley.commands, self.run_command)
        self._threads: set[int] = set()  # threads known to be Parley's (the store says so too)
        self._warned_empty = False

    async def setup_hook(self) -> None:
        # Here, not in on_ready: that fires on every reconnect, and syncs are rate-limited.
        if self.sync_commands:
            synced = await self.tree.sync()
            log.info("registered %d slash commands with Discord", len(synced))

    # ------------------------------------------------------------------ messages

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self._on_message(message)
        except discord.HTTPException as exc:
            log.warning(
                "Discord error answering message %s in channel %s (guild %s): %s",
                message.id,
                message.channel.id,
                message.guild and message.guild.id,
                exc,
            )

    async def _on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot or message.type not in _CONVERSATION_TYPES:
            return
        if not self.policy.allowed(message.author, message.channel, message.guild):
            return
        self._check_content(message)
        trigger = await self._trigger(message, me)
        if trigger is None:
            return
        key = conversation_key(message.channel, message.guild)
        async with message.channel.typing():
            if trigger in (Trigger.MENTION, Trigger.REPLY):
                await self._catch_up(message, key)
            inbound = Inbound(
                key,
                author(message.author, message.guild, self.policy),
                plain_text(message, self._own_ids(message)),
                message_id=str(message.id),
                attachments=await download(message.attachments, self.settings),
            )
            await self._answer(
                inbound, ChannelSurface(message.channel, message), say("discord.placeholder")
            )

    def _own_ids(self, message: discord.Message) -> set[int]:
        """Parley's user id, and its managed role's (people often @mention that instead)."""
        me = self.user
        ids = {me.id} if me else set()
        member = message.guild.me if message.guild is not None else None
        if member is not None:  # None while the guild is still loading
            ids |= {role.id for role in member.roles if role.is_bot_managed()}
        return ids

    async def _trigger(self, message: discord.Message, me: discord.ClientUser) -> Trigger | None:
        if message.guild is None:
            return Trigger.DM
        own = self._own_ids(message)
        if any(user.id in own for user in message.mentions) or any(
            role.id in own for role in message.role_mentions
        ):
            return Trigger.MENTION
        if await self._replies_to(message, me):
            return Trigger.REPLY
        # Listed in the settings, or switched on with /listen (a thread's key names its parent
        # channel, whose flag it follows).
        if self.policy.answers_all(message.channel) or await self.parley.store.listening(
            conversation_key(message.channel, message.guild)
        ):
            return Trigger.CHANNEL
        if isinstance(message.channel, discord.Thread) and await self._takes_part(
            message.channel, me
        ):
            return Trigger.THREAD
        return None

    @staticmethod
    async def _replies_to(message: discord.Message, me: discord.ClientUser) -> bool:
        reference = message.reference
        if (
            reference is None
            or reference.message_id is None
            or reference.channel_id != message.channel.id
        ):
            return False
        target = reference.resolved or reference.cached_message
        if target is None:
            try:
                target = await message.channel.fetch_message(reference.message_id)
            except discord.NotFound:  # deleted meanwhile
                return False
        return isinstance(target, discord.Message) and target.author.id == me.id

    async def _takes_part(self, thread: discord.Thread, me: discord.ClientUser) -> bool:
        """Parley started the thread, or was mentioned / used there (its conversation exists:
        that survives restarts)."""
        if thread.owner_id == me.id or thread.id in self._threads:
            return True
        if await self.parley.store.exists(conversation_key(thread, thread.guild)):
            self._threads.add(thread.id)
            return True
        return False

    async def _catch_up(self, message: discord.Message, key: ConversationKey) -> None:
        """Remember what was said since the last stored message before answering a mention, so
        the model knows the conversation it was called into. Re-recording is a no-op."""
        conversation = await self.parley.store.conversation(key)
        since = await self.parley.store.latest_platform_message_id(conversation.id)
        after = int(since) if since and since.isdigit() else 0
        try:
            earlier = [
                m async for m in message.channel.history(limit=CATCH_UP_LIMIT, before=message)
            ]
        except discord.Forbidden:
            log.info(
                "no Read Message History permission in channel %s: answering without catching up",
                message.channel.id,
            )
            return
        for said in reversed(earlier):
            if (
                said.id <= after
                or said.author.bot
                or said.type not in _CONVERSATION_TYPES
                or not self.policy.allowed(said.author, said.channel, said.guild)
            ):
                continue
            await self.parley.record(
                Inbound(
                    key,
                    author(said.author, said.guild, self.policy),
                    plain_text(said, self._own_ids(said)),
                    message_id=str(said.id),
                )
            )

    def _check_content(self, message: discord.Message) -> None:
        empty = not (
            message.content
            or message.attachments
            or message.embeds
            or message.stickers
            or message.poll
        )
        if message.guild is not None and empty and not self._warned_empty:
            self._warned_empty = True
            log.warning(say("discord.content_empty"))

    async def _answer(self, inbound: Inbound, surface: Surface, placeholder: str | None) -> None:
        await deliver(
            self.parley.reply(inbound), surface, self.settings.stream_interval, placeholder
        )

    # ------------------------------------------------------------------ slash commands

    async def run_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        try:
            await self._run_command(interaction, name, args)
        except discord.HTTPException as exc:
            log.warning(
                "Discord error running /%s (interaction %s) in channel %s: %s",
                name,
                interaction.id,
                interaction.channel_id,
                exc,
            )

    async def _run_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        user, guild = interaction.user, interaction.guild
        # The channel object is missing for channel types discord.py does not know.
        channel = interaction.channel or discord.Object(interaction.channel_id or 0)
        if interaction.channel_id is None or not self.policy.allowed(user, channel, guild):
            await interaction.response.send_message(say("discord.not_allowed"), ephemeral=True)
            return
        # First, within Discord's 3 s: the answer may take a while.
        await interaction.response.defer(thinking=True)
        inbound = Inbound(
            conversation_key(channel, guild),
            author(user, guild, self.policy),
            "",
            message_id=str(interaction.id),
            command=Command(name, args),
        )
        await self._answer(inbound, InteractionSurface(interaction), None)


async def sync_commands(parley: Parley, token: str) -> list[str]:
    """Register the slash commands with Discord once (`parley discord sync`); their names."""
    # REST only (no gateway), so PARLEY_DISCORD_API_URL applies here as it does to the doctor.
    if parley.settings.discord_api_url != DEFAULT_DISCORD_API_URL:
        discord.http.Route.BASE = parley.settings.discord_api_url.rstrip("/")
    client = ParleyClient(parley, parley.settings)
    try:
        async with client:
            await client.login(token)
            synced = await client.tree.sync()
    except discord.LoginFailure as exc:
        raise ConfigError(say("discord.bad_token")) from exc
    except (discord.HTTPException, aiohttp.ClientError) as exc:
        raise ConfigError(say("discord.unreachable", error=exc)) from exc
    return [command.name for command in synced]


class DiscordAdapter:
    name = "discord"

    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token

    async def run(self, parley: Parley) -> None:
        client = ParleyClient(
            parley, self.settings, sync_commands=self.settings.discord_sync_commands
        )
        try:
            async with client:
                await client.start(self.token)
        except discord.PrivilegedIntentsRequired as exc:
            raise ConfigError(say("discord.intents")) from exc
        except discord.LoginFailure as exc:
            raise ConfigError(say("discord.bad_token")) from exc
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            raise ConfigError(say("discord.unreachable", error=exc)) from exc
