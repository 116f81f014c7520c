"""Discord's section of the settings (same sources and variable names as the core's), and the
neutral rules it sets for `bot.policy`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bot.policy import PlatformRules
from bot.settings import IdList, NumberList, SettingsSection, env_alias
from bot.texts import say

DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
DEFAULT_DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"


class DiscordSettings(SettingsSection):
    discord_token: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("DISCORD_TOKEN", "discord_token"),
            description="Discord bot token; setting it makes `parley run` start the Discord bot.",
        ),
    ] = None
    discord_guilds: Annotated[
        IdList,
        Field(
            description="Only these server (guild) ids, comma-separated; empty: every server. "
            "When set, DMs are answered only for members of these servers.",
        ),
    ] = frozenset()
    discord_channels: Annotated[
        IdList,
        Field(
            description=(
                "Only these channel ids (a thread counts as its parent channel); empty: all."
            ),
        ),
    ] = frozenset()
    discord_roles: Annotated[
        IdList,
        Field(
            description="Only members with one of these role ids or names (or a listed user); "
            "empty: everyone.",
        ),
    ] = frozenset()
    discord_users: Annotated[
        IdList,
        Field(
            description="Only these user ids (or members with a listed role); empty: everyone.",
        ),
    ] = frozenset()
    discord_admin_roles: Annotated[
        IdList,
        Field(
            description="Role ids or names allowed to use admin commands (/reset, /persona set), "
            "besides members with Manage Server or Administrator.",
        ),
    ] = frozenset()
    discord_answer_all_channels: Annotated[
        IdList,
        Field(
            description="Channel ids where Parley answers every message, no @mention needed.",
        ),
    ] = frozenset()
    discord_dms: Annotated[
        bool,
        Field(
            description="Answer direct messages on Discord (false: refuse them, saying why once).",
        ),
    ] = True
    discord_sync_commands: Annotated[
        bool,
        Field(
            description="Register the slash commands with Discord at start-up (or run "
            "`parley discord sync` once).",
        ),
    ] = False
    discord_api_url: Annotated[
        str,
        Field(
            description="Discord REST API base URL (a proxy in front of Discord, or a test "
            "server).",
        ),
    ] = DEFAULT_DISCORD_API_URL
    discord_gateway_url: Annotated[
        str,
        Field(
            description="Discord gateway (websocket) URL, with PARLEY_DISCORD_API_URL for a "
            "proxy or a test server.",
        ),
    ] = DEFAULT_DISCORD_GATEWAY_URL
    discord_shard_count: Annotated[
        int | None,
        Field(
            ge=1,
            description="Total number of Discord shards, over all processes; unset: one "
            "connection for all servers (enough below ~2,500 servers).",
        ),
    ] = None
    discord_shard_ids: Annotated[
        NumberList,
        Field(
            description="The shards this process runs, e.g. 0,1 (needs "
            "PARLEY_DISCORD_SHARD_COUNT); unset: all of them.",
        ),
    ] = ()

    def problem(self) -> str | None:
        count = self.discord_shard_count
        if count is None:
            return say("config.discord_shard_ids_alone") if self.discord_shard_ids else None
        for shard in self.discord_shard_ids:
            if not 0 <= shard < count:
                return say("config.discord_shard_range", shard=shard, count=count, last=count - 1)
        return None

    @property
    def shard_ids(self) -> tuple[int, ...] | None:
        """The shards this process runs, in order; None when unsharded (one connection)."""
        if self.discord_shard_count is None:
            return None
        return tuple(sorted(set(self.discord_shard_ids))) or tuple(range(self.discord_shard_count))

    @property
    def served_shards(self) -> tuple[int, ...]:
        """The shards whose events this process receives (unsharded, everything is shard 0)."""
        return self.shard_ids or (0,)

    def rules(self) -> PlatformRules:
        return PlatformRules(
            workspaces=self.discord_guilds,
            channels=self.discord_channels,
            users=self.discord_users,
            roles=self.discord_roles,
            admin_roles=self.discord_admin_roles,
            answer_channels=self.discord_answer_all_channels,
            dms=self.discord_dms,
        )
