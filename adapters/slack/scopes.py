"""What the Slack app must be granted: every bot scope the Slack code uses and every event it
listens to. The manifests in deploy/ are generated from this (`adapters.slack.manifest`) and
`parley doctor` compares a token's scopes with it, so the three cannot drift apart.

Group DMs (mpim) are not supported: neither `mpim:history` nor `message.mpim` is asked for, so
Slack does not send them (docs/slack-setup.md says so).
"""

from __future__ import annotations

# Scope → what needs it.
BOT_SCOPES: dict[str, str] = {
    "app_mentions:read": "app_mention events: @Parley in channels",
    "channels:history": "message events in public channels (threads, /listen channels)",
    "groups:history": "message events in private channels",
    "im:history": "message events in direct messages",
    "chat:write": "chat.postMessage, chat.update, chat.delete: the replies",
    "commands": "slash commands",
    "files:read": "downloading files shared with a message",
    "users:read": "users.info: the speaker's display name",
}

BOT_EVENTS: tuple[str, ...] = ("app_mention", "message.channels", "message.groups", "message.im")
