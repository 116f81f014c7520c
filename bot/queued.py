"""A neutral message as stored in the inbound queue (JSON), and the adapter's side of it.

Everything the core decides with is kept (the author with roles and admin status, the facts);
what only lives in this process is not: the membership callable (the policy ran already) and
files, which the adapter lists in its `Route` as references and downloads when the message is
answered, so a burst waits in the database rather than in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.messages import Author, ChannelKind, Command, ConversationKey, Facts, Inbound


@dataclass(frozen=True)
class Route:
    """Where an adapter answers a stored message, and how it orders and finds it."""

    lane: str  # which processes may answer it: "slack", "discord/<shard>"
    order: str  # the platform's id that orders the conversation: Slack ts, Discord snowflake
    data: dict[str, Any] = field(default_factory=dict)  # the adapter's own (JSON-ready)


def to_data(message: Inbound) -> dict[str, Any]:
    """The message as JSON-ready data."""
    author, facts, command = message.author, message.facts, message.command
    return {
        "platform": message.key.platform,
        "workspace": message.key.workspace,
        "channel": message.key.channel,
        "thread": message.key.thread,
        "author": {
            "id": author.id,
            "name": author.name,
            "is_admin": author.is_admin,
            "roles": sorted(author.roles),
            "can_manage": author.can_manage,
        },
        "text": message.text,
        "message_id": message.message_id,
        "command": None if command is None else [command.name, command.args],
        "facts": {
            "kind": facts.kind.value,
            "mentioned": facts.mentioned,
            "reply_to_bot": facts.reply_to_bot,
            "thread_by_bot": facts.thread_by_bot,
        },
    }


def from_data(data: dict[str, Any]) -> Inbound:
    author, facts, command = data["author"], data["facts"], data["command"]
    return Inbound(
        ConversationKey(data["platform"], data["workspace"], data["channel"], data["thread"]),
        Author(
            author["id"],
            author["name"],
            is_admin=author["is_admin"],
            roles=frozenset(author["roles"]),
            can_manage=author["can_manage"],
        ),
        data["text"],
        message_id=data["message_id"],
        command=None if command is None else Command(*command),
        facts=Facts(
            kind=ChannelKind(facts["kind"]),
            mentioned=facts["mentioned"],
            reply_to_bot=facts["reply_to_bot"],
            thread_by_bot=facts["thread_by_bot"],
        ),
    )
