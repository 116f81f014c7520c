"""The Discord bot: turns messages and slash commands into `Inbound`s with their facts, lets the
core admit them, and streams the replies."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

from adapters.discord.answers import (
    CONVERSATION_TYPES,
    DiscordAnswers,
    deferred,
    lane,
    route_of,
)
from adapters.discord.inbound import (
    author,
    channel_kind,
    conversation_key,
    membership,
    plain_text,
)
from adapters.discord.settings import (
    DEFAULT_DISCORD_API_URL,
    DEFAULT_DISCORD_GATEWAY_URL,
    DiscordSettings,
)
from adapters.discord.shards import IdentifyPacer, shard_of
from adapters.discord.slash import add_commands
from adapters.discord.surface import LIMIT
from bot.core import Parley
from bot.delivery import mending
from bot.messages import Command, Facts, Inbound
from bot.policy import Verdict
from bot.queued import Route
from bot.settings import ConfigError
from bot.texts import say

log = logging.getLogger(__name__)

_NO_PINGS = discord.AllowedMentions.none()
# Seconds Discord's clock (message snowflakes) may differ from ours.
_CLOCK_SKEW = 5.0
# Messages read after a crash's unrecorded placeholder may be (the channel may have moved on).
_MEND_SCAN = 50
SHARDING_REQUIRED = 4011  # gateway close code: too many servers for the shards identified


def intents() -> discord.Intents:
    chosen = discord.Intents.default()
    chosen.message_content = True  # privileged: without it guild messages arrive empty
    return chosen


class ParleyClient(discord.Client):
    def __init__(
        self,
        parley: Parley,
        section: DiscordSettings,
        *,
        sync_commands: bool = False,
        **options: Any,
    ) -> None:
        # Parley has no voice: skip discord.py's warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # Nothing Parley sends pings anyone, whichever call sends it.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents(), **options)
        self.parley = parley
        self.section = section
        self.sync_commands = sync_commands
        self.tree: app_commands.CommandTree[ParleyClient] = app_commands.CommandTree(self)
        self.answers = DiscordAnswers(self)
        add_commands(self.tree, parley.commands, self.run_command)
        self._warned_empty = False

    @property
    def served_shards(self) -> tuple[int, ...]:
        """The shards this process receives events of."""
        return self.section.served_shards

    def shard_for(self, guild_id: int | None) -> int:
        """The shard an event of this server (None: a DM) arrived on."""
        return shard_of(guild_id, self.shard_count)

    async def setup_hook(self) -> None:
        for shard in self.served_shards:  # only this process answers its shards' messages
            await self.parley.pipeline.serve(lane(shard), self.answers)
        await self.mend_left_over()  # after `serve` ended the claims of stopped processes
        # Here, not in on_ready: that fires on every reconnect, and syncs are rate-limited.
        # Commands are global: of several shard processes, the one with shard 0 registers them.
        if self.sync_commands and 0 in self.served_shards:
            synced = await self.tree.sync()
            log.info("registered %d slash commands with Discord", len(synced))

    async def mend_left_over(self) -> None:
        """Replies a crash cut off ("…" or a half reply) show a notice, or the finished reply if
        it was ready (`bot.delivery.mending`); messages left over are removed."""
        for left in await self.parley.delivery.left_over("discord"):
            if not await self._serves(int(left.place)):
                continue  # another shard's process mends it
            channel = self.get_partial_messageable(int(left.place))
            posted = [channel.get_partial_message(int(m)) for m in left.posted]
            try:
                if not posted:
                    await self._mend_unrecorded(channel, left.started)
                for message, text in zip(posted, mending(left, LIMIT), strict=True):
                    if text:
                        await message.edit(content=text, allowed_mentions=_NO_PINGS)
                    else:
                        await message.delete()
            except discord.HTTPException as exc:  # deleted meanwhile, or no access any more
                log.warning("could not mend a cut-off reply in channel %s: %s", left.place, exc)
            await self.parley.delivery.mended(left)

    async def _mend_unrecorded(self, channel: discord.PartialMessageable, since: float) -> None:
        """A placeholder the crash came right after: posted, its id not yet stored. Parley's
        messages there since the reply began that still say only the placeholder are it (a live
        reply's placeholder would be edited again by its own delivery)."""
        moment = datetime.fromtimestamp(since - _CLOCK_SKEW, UTC)
        after = discord.Object(discord.utils.time_snowflake(moment))
        placeholder = say("discord.placeholder")
        async for message in channel.history(after=after, limit=_MEND_SCAN):
            mine = self.user is not None and message.author.id == self.user.id
            if mine and message.content == placeholder:
                await message.edit(content=say("shutdown.cut"), allowed_mentions=_NO_PINGS)

    async def _serves(self, channel_id: int) -> bool:
        """Whether this process receives the channel's events (an unsharded client: all)."""
        return True

    # ------------------------------------------------------------------ messages

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self._on_message(message)
        except discord.HTTPException as exc:
            guild_id = message.guild.id if message.guild is not None else None
            log.warning(
                "Discord error answering message %s in channel %s (guild %s, shard %s): %s",
                message.id,
                message.channel.id,
                guild_id,
                self.shard_for(guild_id),
                exc,
            )

    async def _on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot or message.type not in CONVERSATION_TYPES:
            return
        self._check_content(message)
        key = conversation_key(message.channel, message.guild)
        shard = self.shard_for(message.guild.id if message.guild is not None else None)
        admission = await self.parley.accept(
            Inbound(
                key,
                author(message.author),
                plain_text(message, self.own_ids(message)),
                message_id=str(message.id),
                facts=await self._facts(message, me),
            ),
            # Answered when its turn comes (`DiscordAnswers`), files downloaded then.
            Route(lane(shard), str(message.id), route_of(message)),
        )
        if admission.verdict is Verdict.REFUSE:
            await message.channel.send(admission.notice, allowed_mentions=_NO_PINGS)

    def own_ids(self, message: discord.Message) -> set[int]:
        """Parley's user id, and its managed role's (people often @mention that instead)."""
        me = self.user
        ids = {me.id} if me else set()
        member = message.guild.me if message.guild is not None else None
        if member is not None:  # None while the guild is still loading
            ids |= {role.id for role in member.roles if role.is_bot_managed()}
        return ids

    async def _facts(self, message: discord.Message, me: discord.ClientUser) -> Facts:
        own = self.own_ids(message)
        mentioned = any(user.id in own for user in message.mentions) or any(
            role.id in own for role in message.role_mentions
        )
        channel = message.channel
        return Facts(
            kind=channel_kind(channel, message.guild),
            mentioned=mentioned,
            # Looked up only when it can matter: a mention or a DM is answered anyway.
            reply_to_bot=message.guild is not None
            and not mentioned
            and await self._replies_to(message, me),
            thread_by_bot=isinstance(channel, discord.Thread) and channel.owner_id == me.id,
            member_of=membership(self, message.author.id),
        )

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

    # ------------------------------------------------------------------ slash commands

    async def run_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        try:
            await self._run_command(interaction, name, args)
        except discord.HTTPException as exc:
            log.warning(
                "Discord error running /%s (interaction %s) in channel %s (shard %s): %s",
                name,
                interaction.id,
                interaction.channel_id,
                self.shard_for(interaction.guild_id),
                exc,
            )

    async def _run_command(self, interaction: discord.Interaction, name: str, args: str) -> None:
        user, guild = interaction.user, interaction.guild
        # The channel object is missing for channel types discord.py does not know.
        channel = interaction.channel or discord.Object(interaction.channel_id or 0)
        if interaction.channel_id is None:
            await interaction.response.send_message(say("not_allowed"), ephemeral=True)
            return
        message = Inbound(
            conversation_key(channel, guild),
            author(user),
            "",
            message_id=str(interaction.id),
            command=Command(name, args),
            facts=Facts(kind=channel_kind(channel, guild), member_of=membership(self, user.id)),
        )
        verdict = await self.parley.policy.admit(message)
        if verdict.verdict is Verdict.REFUSE:
            await interaction.response.send_message(verdict.notice, ephemeral=True)
            return
        if verdict.verdict is not Verdict.ANSWER:
            return
        # First, within Discord's 3 s (storing and waiting for its turn may take longer).
        await interaction.response.defer(thinking=True)
        shard = self.shard_for(guild.id if guild is not None else None)
        await self.parley.accept(
            message, Route(lane(shard), str(interaction.id), deferred(interaction))
        )


class ShardedParleyClient(ParleyClient, discord.AutoShardedClient):
    """Runs the shards PARLEY_DISCORD_SHARD_IDS of PARLEY_DISCORD_SHARD_COUNT; other processes
    run the rest."""

    def __init__(self, parley: Parley, section: DiscordSettings, **options: Any) -> None:
        shard_ids = section.shard_ids
        assert shard_ids is not None  # built only for a sharded layout (see `make_client`)
        super().__init__(
            parley,
            section,
            shard_count=section.discord_shard_count,
            shard_ids=list(shard_ids),
            **options,
        )
        self._pacer = IdentifyPacer()

    async def setup_hook(self) -> None:
        try:
            limits = await self.fetch_session_start_limits()
        except discord.GatewayNotFound as exc:
            log.warning("could not read Discord's session start limits (%s): one at a time", exc)
        else:
            self._pacer = IdentifyPacer(limits.max_concurrency)
            if limits.remaining < len(self.served_shards):
                log.warning(
                    "Discord allows %d more session starts for %.0f s: some shards wait",
                    limits.remaining,
                    limits.reset_after / 1000,
                )
        log.info(
            "Discord shards %s of %s in this process",
            ",".join(map(str, self.served_shards)),
            self.shard_count,
        )
        await super().setup_hook()

    async def _serves(self, channel_id: int) -> bool:
        try:
            channel = await self.fetch_channel(channel_id)
        except (discord.HTTPException, discord.InvalidData):
            return 0 in self.served_shards  # gone or out of reach: shard 0's process forgets it
        guild = getattr(channel, "guild", None)
        return self.shard_for(guild.id if guild is not None else None) in self.served_shards

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self._pacer.wait(shard_id or 0)


def make_client(parley: Parley, section: DiscordSettings, **options: Any) -> ParleyClient:
    """The client for this process's shard layout: unsharded, one connection for every server
    (as before sharding was configurable), else the configured shards."""
    if section.shard_ids is None:
        return ParleyClient(parley, section, **options)
    return ShardedParleyClient(parley, section, **options)


async def sync_commands(parley: Parley, section: DiscordSettings) -> list[str]:
    """Register the slash commands with Discord once (`parley discord sync`); their names."""
    _use_endpoints(section)  # REST only: PARLEY_DISCORD_API_URL applies, as to the doctor
    client = ParleyClient(parley, section)
    try:
        async with client:
            await client.login(section.discord_token or "")
            synced = await client.tree.sync()
    except discord.LoginFailure as exc:
        raise ConfigError(say("discord.bad_token")) from exc
    except (discord.HTTPException, aiohttp.ClientError) as exc:
        raise ConfigError(say("discord.unreachable", error=exc)) from exc
    return [command.name for command in synced]


def _use_endpoints(section: DiscordSettings) -> None:
    """Point discord.py at a proxy or test server when configured (it has no per-client URL)."""
    if section.discord_api_url != DEFAULT_DISCORD_API_URL:
        discord.http.Route.BASE = section.discord_api_url.rstrip("/")
    if section.discord_gateway_url != DEFAULT_DISCORD_GATEWAY_URL:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(section.discord_gateway_url)


class DiscordAdapter:
    name = "discord"

    def __init__(self, section: DiscordSettings) -> None:
        self.section = section

    async def run(self, parley: Parley) -> None:
        _use_endpoints(self.section)
        client = make_client(parley, self.section, sync_commands=self.section.discord_sync_commands)
        try:
            async with client:
                await client.start(self.section.discord_token or "")
        except discord.PrivilegedIntentsRequired as exc:
            raise ConfigError(say("discord.intents")) from exc
        except discord.LoginFailure as exc:
            raise ConfigError(say("discord.bad_token")) from exc
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            raise ConfigError(say("discord.unreachable", error=exc)) from exc
        except discord.ConnectionClosed as exc:
            if exc.code == SHARDING_REQUIRED:
                raise ConfigError(say("discord.sharding_required")) from exc
            raise
