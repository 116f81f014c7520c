"""Who Parley listens to on Discord, and who counts as an admin (from the settings)."""

from __future__ import annotations

import discord

from bot.settings import Settings

User = discord.User | discord.Member


def channel_ids(channel: object) -> set[str]:
    """The channel's id, plus its parent's for a thread (threads follow their channel's rules)."""
    ids = {str(getattr(channel, "id", ""))}
    if isinstance(channel, discord.Thread):
        ids.add(str(channel.parent_id))
    return ids


def _role_keys(user: User) -> set[str]:
    if not isinstance(user, discord.Member):
        return set()
    return {str(role.id) for role in user.roles} | {role.name for role in user.roles}


class Policy:
    def __init__(self, settings: Settings) -> None:
        self.guilds = settings.discord_guilds
        self.channels = settings.discord_channels
        self.roles = settings.discord_roles
        self.users = settings.discord_users
        self.admin_roles = settings.discord_admin_roles
        self.answer_all = settings.discord_answer_all_channels

    def allowed(self, user: User, channel: object, guild: discord.Guild | None) -> bool:
        """The allow-lists; server and channel lists restrict servers only, not DMs."""
        if guild is not None:
            if self.guilds and str(guild.id) not in self.guilds:
                return False
            if self.channels and not channel_ids(channel) & self.channels:
                return False
        if self.users or self.roles:
            return str(user.id) in self.users or bool(_role_keys(user) & self.roles)
        return True

    def is_admin(self, user: User, guild: discord.Guild | None) -> bool:
        """In a DM the person owns the conversation; in a server: an admin role, or the
        Manage Server / Administrator permission."""
        if guild is None:
            return True
        if not isinstance(user, discord.Member):
            return False
        permissions = user.guild_permissions
        return (
            permissions.administrator
            or permissions.manage_guild
            or bool(_role_keys(user) & self.admin_roles)
        )

    def answers_all(self, channel: object) -> bool:
        return bool(channel_ids(channel) & self.answer_all)
