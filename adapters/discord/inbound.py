"""Discord messages and interactions → the neutral `Inbound` parts: key, author, text, facts."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Collection
from dataclasses import replace

import aiohttp
import discord

from bot.attachments import should_download
from bot.downloads import FileFetcher, NotFromPlatform, Origin, private_allowed
from bot.messages import Attachment, Author, ChannelKind, ConversationKey, Membership
from bot.settings import Settings

log = logging.getLogger(__name__)

User = discord.User | discord.Member

_MENTION = re.compile(r"<@[!&]?(\d+)>")
_CDN = (
    Origin("https", "cdn.discordapp.com", 443),
    Origin("https", "media.discordapp.net", 443),
)


def conversation_key(channel: object, guild: discord.Guild | None) -> ConversationKey:
    """A channel, a thread (keyed under its parent channel) or a DM is one conversation; each
    DM is a workspace of its own."""
    channel_id = str(getattr(channel, "id", ""))
    if guild is None:
        return ConversationKey("discord", f"dm-{channel_id}", channel_id)
    if isinstance(channel, discord.Thread):
        return ConversationKey("discord", str(guild.id), str(channel.parent_id), channel_id)
    return ConversationKey("discord", str(guild.id), channel_id)


def channel_kind(channel: object, guild: discord.Guild | None) -> ChannelKind:
    """Public when everyone in the server may read it (a thread: its channel, unless private)."""
    if guild is None:
        return ChannelKind.GROUP_DM if isinstance(channel, discord.GroupChannel) else ChannelKind.DM
    if isinstance(channel, discord.Thread):
        if channel.type is discord.ChannelType.private_thread:
            return ChannelKind.PRIVATE
        channel = channel.parent
    if not isinstance(channel, discord.abc.GuildChannel):
        return ChannelKind.UNKNOWN  # not in discord.py's cache
    readable = channel.permissions_for(guild.default_role).view_channel
    return ChannelKind.CHANNEL if readable else ChannelKind.PRIVATE


def author(user: User) -> Author:
    if not isinstance(user, discord.Member):
        return Author(str(user.id), user.display_name)
    permissions = user.guild_permissions
    return Author(
        str(user.id),
        user.display_name,
        roles=frozenset({str(role.id) for role in user.roles} | {role.name for role in user.roles}),
        can_manage=permissions.administrator or permissions.manage_guild,
    )


def membership(client: discord.Client, user_id: int) -> Membership:
    """Asks Discord whether the user is a member of a server (the cache first)."""

    async def member_of(guild_id: str) -> bool:
        guild = client.get_guild(int(guild_id)) if guild_id.isdigit() else None
        if guild is None:
            return False
        if guild.get_member(user_id) is not None:
            return True
        try:
            await guild.fetch_member(user_id)
        except discord.NotFound:
            return False
        except discord.HTTPException as exc:
            log.warning("could not look up member %s of server %s: %s", user_id, guild_id, exc)
            return False
        return True

    return member_of


def plain_text(message: discord.Message, own_ids: Collection[int]) -> str:
    """The text without the @mention that woke Parley; other user mentions become @names."""
    names = {user.id: user.display_name for user in message.mentions}

    def replace(match: re.Match[str]) -> str:
        mentioned = int(match[1])
        if mentioned in own_ids:
            return ""
        return f"@{names[mentioned]}" if mentioned in names else match[0]

    return _MENTION.sub(replace, message.content).strip()


def cdn_origins() -> tuple[Origin, ...]:
    """Where Discord stores attachments: its CDN, or the origin of the API base discord.py was
    pointed at (a proxy or a local stand-in)."""
    return (*_CDN, Origin.of(discord.http.Route.BASE))


async def download(files: list[discord.Attachment], settings: Settings) -> tuple[Attachment, ...]:
    """Each file with its bytes when the core can use them (size-bounded), else without."""
    if not files:
        return ()
    api = discord.http.Route.BASE
    async with FileFetcher(cdn_origins(), private_allowed(api)) as fetcher:
        return tuple([await _fetch(fetcher, file, settings) for file in files])


async def _fetch(fetcher: FileFetcher, file: discord.Attachment, settings: Settings) -> Attachment:
    content_type = (
        file.content_type or mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
    )
    skipped = Attachment(file.filename, content_type, b"", file.size)
    if not should_download(file.filename, content_type, file.size, settings):
        return skipped
    limit = settings.attachment_max_bytes
    try:
        got = await fetcher.get(file.url, limit)
    except NotFromPlatform as exc:
        log.info("not downloading attachment %s: %s", file.id, exc)
        return replace(skipped, foreign=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Never the URL: Discord signs attachment URLs, and the signature grants access.
        log.warning(
            "could not download attachment %s (%d bytes): %s",
            file.id,
            file.size,
            type(exc).__name__,
        )
        return skipped
    if len(got.data) > limit:
        return replace(skipped, size=len(got.data))
    return replace(skipped, data=got.data)
