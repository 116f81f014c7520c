"""What Slack sends (typed), and how it maps onto Parley's neutral parts: conversation keys and
facts. Nothing here decides whether Parley answers: `bot.policy` does.

Conversations: a thread (`thread_ts`) is one; a channel's top level is another; a DM is its own
(its threads are threads). A mention at a channel's top level is answered in a new thread under
it, and that thread is the conversation, so the people there continue it without mentioning.
Slash commands carry no thread, so they act on the channel's (or DM's) top level.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from bot.messages import ChannelKind

PLATFORM = "slack"
# New messages by people; everything else (message_changed, message_deleted, bot_message,
# channel_join, …) is a notice, often caused by Parley's own edits.
_PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
# `channel_type` of message events.
KINDS = {
    "channel": ChannelKind.CHANNEL,
    "group": ChannelKind.PRIVATE,
    "im": ChannelKind.DM,
    "mpim": ChannelKind.GROUP_DM,
}
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


class SlackFile(TypedDict):
    id: str
    name: NotRequired[str]
    title: NotRequired[str]
    mimetype: NotRequired[str]
    size: NotRequired[int]
    # Missing for files hidden by a free plan's limits, or in other workspaces.
    url_private: NotRequired[str]
    url_private_download: NotRequired[str]


class MessageEvent(TypedDict):
    """An `app_mention` or `message` event."""

    type: str
    channel: str
    ts: str
    user: NotRequired[str]
    text: NotRequired[str]
    subtype: NotRequired[str]
    bot_id: NotRequired[str]
    thread_ts: NotRequired[str]
    channel_type: NotRequired[str]  # message events only
    files: NotRequired[list[SlackFile]]


class EventBody(TypedDict):
    """The envelope around an event (`event_callback`)."""

    type: str
    event: MessageEvent
    team_id: NotRequired[str]
    event_id: NotRequired[str]


class SlashCommand(TypedDict):
    command: str
    user_id: str
    channel_id: str
    text: NotRequired[str]
    team_id: NotRequired[str]
    trigger_id: NotRequired[str]
    channel_name: NotRequired[str]  # "directmessage", "privategroup", "mpdm-…" or the name
    response_url: NotRequired[str]


def mention(bot_user_id: str) -> str:
    return f"<@{bot_user_id}>"


def from_slack(text: str, bot_user_id: str) -> str:
    """A person's message as the model should read it: no mention of Parley, no entities."""
    text = text.replace(mention(bot_user_id), "")
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text.strip()


def person(event: MessageEvent, bot_user_id: str) -> str | None:
    """The author of a new message by a person (not a bot, an edit or a notice), else None."""
    user = event.get("user")
    if (
        event.get("subtype") in _PERSON_SUBTYPES
        and not event.get("bot_id")
        and user
        and user != bot_user_id
    ):
        return user
    return None


def command_kind(command: SlashCommand) -> ChannelKind:
    """Slash commands say little about their channel: its id and a telling name."""
    name = command.get("channel_name", "")
    if command["channel_id"].startswith("D") or name == "directmessage":
        return ChannelKind.DM
    if name.startswith("mpdm-"):
        return ChannelKind.GROUP_DM
    if name == "privategroup":
        return ChannelKind.PRIVATE
    return ChannelKind.UNKNOWN
