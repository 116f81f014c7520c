"""Discord, on discord.py: answers mentions, DMs, replies, its threads and chosen channels, with
streamed replies and slash commands. `client` has the bot; the other modules are its parts:
`policy` (allow-lists, admins), `inbound` (Discord → Inbound), `surface` (rendering), `slash`."""

from adapters.discord.client import DiscordAdapter, ParleyClient, sync_commands

__all__ = ["DiscordAdapter", "ParleyClient", "sync_commands"]
