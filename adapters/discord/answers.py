"""Answering stored Discord messages and slash commands when their turn comes (`bot.pipeline`):
catch up on the channel, download the files, stream the reply.

What was received is stored with a route of plain ids (channel, message, attachments as
Discord's own payloads), so any process running the shard can answer it, also after a restart.
A slash command's route keeps its interaction's token (cleared with the route once answered):
any process edits the deferred response through the interaction's webhook while Discord keeps it
(15 minutes), then the answer is posted in its channel instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord.inbound import author, download, plain_text
from adapters.discord.surface import ChannelSurface, InteractionSurface
from bot.messages import ConversationKey, Facts, Inbound
from bot.pipeline import Job
from bot.texts import say

if TYPE_CHECKING:
    from adapters.discord.client import ParleyClient

log = logging.getLogger(__name__)

# On a mention, at most this many earlier channel messages are caught up on (recorded).
CATCH_UP_LIMIT = 25
CONVERSATION_TYPES = (discord.MessageType.default, discord.MessageType.reply)
# How long a deferred interaction's token is used (Discord's 15 minutes, less a margin for the
# reply itself).
_INTERACTION_LIFE = timedelta(minutes=13)


def lane(shard: int) -> str:
    """The pipeline lane of a shard: only processes running it answer its messages."""
    return f"discord/{shard}"


def deferred(interaction: discord.Interaction) -> dict[str, Any]:
    """The route of a deferred slash command."""
    return {
        "kind": "command",
        "channel": interaction.channel_id,
        "interaction": interaction.id,
        "token": interaction.token,
    }


def route_of(message: discord.Message) -> dict[str, Any]:
    return {
        "kind": "message",
        "channel": message.channel.id,
        "message": message.id,
        "attachments": [dict(file.to_dict()) for file in message.attachments],
    }


class DiscordAnswers:
    def __init__(self, client: ParleyClient) -> None:
        self.client = client

    async def mend(self) -> None:
        await self.client.mend_left_over()

    async def answer(self, job: Job) -> None:
        try:
            if job.route["kind"] == "command":
                await self._command(job)
            else:
                await self._message(job)
        except discord.HTTPException as exc:
            log.warning(
                "Discord error answering message %s in %s: %s",
                job.message.message_id,
                job.message.key,
                exc,
            )

    async def _command(self, job: Job) -> None:
        route, application = job.route, self.client.application_id
        age = discord.utils.utcnow() - discord.utils.snowflake_time(route["interaction"])
        if application is not None and age < _INTERACTION_LIFE:
            webhook = discord.Webhook.partial(application, route["token"], client=self.client)
            await self.client.parley.deliver(job.message, InteractionSurface(webhook))
            return
        log.info("interaction %s expired: answering in its channel", route["interaction"])
        channel = self.client.get_partial_messageable(job.route["channel"])
        await self.client.parley.deliver(job.message, ChannelSurface(channel, None))

    async def _message(self, job: Job) -> None:
        client = self.client
        channel = client.get_channel(job.route["channel"]) or client.get_partial_messageable(
            job.route["channel"]
        )
        assert isinstance(channel, discord.abc.Messageable)
        asked = channel.get_partial_message(job.route["message"])
        async with channel.typing():
            if job.catch_up:
                await self._catch_up(channel, asked, job.message)
            files = [
                discord.Attachment(data=data, state=client._connection)
                for data in job.route["attachments"]
            ]
            message = replace(
                job.message, attachments=await download(files, client.parley.settings)
            )
            surface = ChannelSurface(channel, asked)
            await client.parley.deliver(message, surface, say("discord.placeholder"))

    async def _catch_up(
        self, channel: discord.abc.Messageable, asked: discord.PartialMessage, message: Inbound
    ) -> None:
        """Remember what was said since the last stored message before answering a mention, so
        the model knows the conversation it was called into. Re-recording is a no-op."""
        key: ConversationKey = message.key
        since = await self.client.parley.last_recorded(key)
        after = int(since) if since and since.isdigit() else 0
        try:
            earlier = [m async for m in channel.history(limit=CATCH_UP_LIMIT, before=asked)]
        except discord.Forbidden:
            log.info(
                "no Read Message History permission in channel %s: answering without catching up",
                key.channel,
            )
            return
        facts = Facts(kind=message.facts.kind)
        for said in reversed(earlier):
            if said.id <= after or said.author.bot or said.type not in CONVERSATION_TYPES:
                continue
            await self.client.parley.record(
                Inbound(
                    key,
                    author(said.author),
                    plain_text(said, self.client.own_ids(said)),
                    message_id=str(said.id),
                    facts=facts,
                )
            )
