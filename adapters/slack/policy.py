"""When Parley answers on Slack, and which conversation a message belongs to.

Conversations: a thread (`thread_ts`) is one; a channel's top level is another; a DM is its own
(its threads are threads). A mention at a channel's top level is answered in a new thread under
it, and that thread is the conversation, so the people there continue it without mentioning.
Slash commands carry no thread, so they act on the channel's (or DM's) top level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.messages import ConversationKey
from bot.settings import Settings
from memory.store import Store

PLATFORM = "slack"
# New messages by people; everything else (message_changed, message_deleted, bot_message,
# channel_join, …) is a notice, often caused by Parley's own edits.
_PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})

Event = dict[str, Any]


@dataclass(frozen=True)
class Route:
    """Answer in `key`'s conversation; `key.thread` is also where the reply goes ("" = top)."""

    key: ConversationKey
    # Answer only if Parley already takes part in the thread (its conversation exists).
    if_participating: bool = False


def is_dm_channel(channel_id: str) -> bool:
    return channel_id.startswith("D")


def mention(bot_user_id: str) -> str:
    return f"<@{bot_user_id}>"


class Policy:
    def __init__(self, settings: Settings, bot_user_id: str, store: Store) -> None:
        self.bot_user_id = bot_user_id
        self.store = store
        self.allowed_channels = settings.slack_allowed_channels
        self.allowed_users = settings.slack_allowed_users
        self.admins = settings.slack_admin_users
        self.answer_channels = settings.slack_answer_channels

    def allowed(self, user: str, channel: str) -> bool:
        if self.allowed_users and user not in self.allowed_users:
            return False
        return (
            is_dm_channel(channel)
            or not self.allowed_channels
            or (channel in self.allowed_channels)
        )

    def is_admin(self, user: str, channel: str) -> bool:
        """Configured admins everywhere; in a DM the person owns the conversation."""
        return user in self.admins or is_dm_channel(channel)

    def from_person(self, event: Event) -> bool:
        """A new message by a person allowed to talk to Parley (not a bot, edit or notice)."""
        user = event.get("user")
        return (
            event.get("subtype") in _PERSON_SUBTYPES
            and not event.get("bot_id")
            and isinstance(user, str)
            and user != self.bot_user_id
            and self.allowed(user, str(event.get("channel", "")))
        )

    def route_mention(self, event: Event, team: str) -> Route | None:
        if not self.from_person(event):
            return None
        return Route(_key(event, team, event.get("thread_ts") or event["ts"]))

    async def route_message(self, event: Event, team: str) -> Route | None:
        """`message` events; a channel message mentioning Parley is left to `app_mention`,
        which Slack sends for the same message."""
        if not self.from_person(event):
            return None
        thread = event.get("thread_ts") or ""
        key = _key(event, team, thread)
        if event.get("channel_type") == "im" or await self._answers_all(key):
            return Route(key)
        if mention(self.bot_user_id) in str(event.get("text", "")) or not thread:
            return None
        return Route(key, if_participating=True)

    async def _answers_all(self, key: ConversationKey) -> bool:
        """Listed in the settings, or switched on with /listen (stored for the channel)."""
        return key.channel in self.answer_channels or await self.store.listening(key)


def _key(event: Event, team: str, thread: str) -> ConversationKey:
    return ConversationKey(PLATFORM, team, str(event["channel"]), thread)
