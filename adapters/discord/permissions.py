"""The bot permissions Parley uses on Discord, as the Developer Portal's URL Generator names
them; docs/discord-setup.md asks for exactly these (a test compares)."""

from __future__ import annotations

import discord

# Portal name → (discord.py flag, what needs it).
BOT_PERMISSIONS: dict[str, tuple[str, str]] = {
    "View Channels": ("view_channel", "seeing the channels and threads it answers in"),
    "Send Messages": ("send_messages", "replies, their streamed edits, the typing indicator"),
    "Send Messages in Threads": ("send_messages_in_threads", "replies inside threads"),
    "Read Message History": (
        "read_message_history",
        "replying to a message, reading the message replied to, catching up on a channel",
    ),
}


def bot_permissions() -> discord.Permissions:
    return discord.Permissions(**{flag: True for flag, _why in BOT_PERMISSIONS.values()})
