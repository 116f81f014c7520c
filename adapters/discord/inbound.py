"""Discord messages and interactions → the neutral `Inbound` parts."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Collection

import aiohttp
import discord

from adapters.discord.policy import Policy, User
from bot.attachments import should_download
from bot.messages import Attachment, Author, ConversationKey
from bot.settings import Settings

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[!&]?(\d+)>")


def conversation_key(channel: object, guild: discord.Guild | None) -> ConversationKey:
    """A channel, a thread (keyed under its parent channel) or a DM is one conversation."""
    channel_id = str(getattr(channel, "id", ""))
    if guild is None:
        return ConversationKey("discord", "dm", channel_id)
    if isinstance(channel, discord.Thread):
        return ConversationKey("discord", str(guild.id), str(channel.parent_id), channel_id)
    return ConversationKey("discord", str(guild.id), channel_id)


def author(user: User, guild: discord.Guild | None, policy: Policy) -> Author:
    return Author(str(user.id), user.display_name, is_admin=policy.is_admin(user, guild))


def plain_text(message: discord.Message, own_ids: Collection[int]) -> str:
    """The text without the @mention that woke Parley; other user mentions become @names."""
    names = {user.id: user.display_name for user in message.mentions}

    def replace(match: re.Match[str]) -> str:
        mentioned = int(match[1])
        if mentioned in own_ids:
            return ""
        return f"@{names[mentioned]}" if mentioned in names else match[0]

    return _MENTION.sub(replace, message.content).strip()


async def download(files: list[discord.Attachment], settings: Settings) -> tuple[Attachment, ...]:
    """Each file with its bytes when the core can use them (size-bounded), else without."""
    found: list[Attachment] = []
    for file in files:
        content_type = (
            file.content_type
            or mimetypes.guess_type(file.filename)[0]
            or "application/octet-stream"
        )
        data = b""
        if should_download(file.filename, content_type, file.size, settings):
            try:
                data = await file.read()
            except (discord.HTTPException, aiohttp.ClientError) as exc:
                log.warning(
                    "could not download attachment %s (%d bytes) from %s: %s",
                    file.filename,
                    file.size,
                    file.url,
                    exc,
                )
        found.append(Attachment(file.filename, content_type, data, file.size))
    return tuple(found)
