"""The neutral message model every adapter speaks.

An adapter turns a platform event into an `Inbound`, hands it to `Parley.reply`, and renders the
`ReplyEvent`s it gets back. Nothing here knows about Discord or Slack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from memory.keys import ConversationKey as ConversationKey  # adapters build keys from here
from memory.kinds import ChannelKind

__all__ = ["ChannelKind", "ConversationKey"]  # re-exported: adapters describe places with them


@dataclass(frozen=True)
class Author:
    id: str
    name: str
    # Decided by the core (`bot.policy`) from the facts below and the platform's rules.
    is_admin: bool = False
    roles: frozenset[str] = frozenset()  # the platform's role ids and names
    can_manage: bool = False  # the platform lets them manage this place (e.g. Manage Server)


# Whether the author belongs to a workspace (e.g. a Discord server), asked of the platform.
Membership = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class Facts:
    """How a message reached Parley, as the platform reports it. Whether it is answered is
    decided from these in one place, `bot.policy`."""

    kind: ChannelKind = ChannelKind.CHANNEL
    mentioned: bool = False  # Parley (or its role) was @mentioned; always so in a terminal
    reply_to_bot: bool = False  # a reply to one of Parley's messages
    thread_by_bot: bool = False  # in a thread Parley started
    member_of: Membership | None = field(default=None, compare=False)

    @property
    def is_dm(self) -> bool:
        return self.kind is ChannelKind.DM

    @property
    def outside_channels(self) -> bool:
        """A DM or group DM: no server or channel rules apply, the DM rules do."""
        return self.kind in (ChannelKind.DM, ChannelKind.GROUP_DM)


@dataclass(frozen=True)
class Attachment:
    """A file shared with a message, already downloaded (and size-bounded) by the adapter."""

    filename: str
    content_type: str
    data: bytes
    size: int | None = None  # as the platform reported it; `data` is empty if not downloaded
    refused: bool = False  # the platform denied the download (e.g. a missing permission)
    foreign: bool = False  # hosted outside the platform's own file hosts: not downloaded


@dataclass(frozen=True)
class Command:
    """A slash command, e.g. `/persona set You are terse.` → Command("persona", "set You are…")."""

    name: str
    args: str = ""


@dataclass(frozen=True)
class Inbound:
    key: ConversationKey
    author: Author
    text: str
    message_id: str | None = None  # the platform's id: a re-delivered message is not answered twice
    command: Command | None = None  # set by adapters with native slash commands
    attachments: tuple[Attachment, ...] = ()
    facts: Facts = Facts()


class Outcome(StrEnum):
    OK = "ok"
    COMMAND = "command"
    EMPTY = "empty"
    DENIED = "denied"
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the stream broke off (no finish, a dropped connection)
    UNREACHABLE = "unreachable"
    AUTH = "auth"
    MODEL_NOT_FOUND = "model_not_found"
    BAD_REQUEST = "bad_request"
    SERVER_ERROR = "server_error"
    SHUTTING_DOWN = "shutting_down"


@dataclass(frozen=True)
class TokenUsage:
    """Tokens one reply cost: the prompt sent and the reply received."""

    prompt: int
    reply: int


@dataclass(frozen=True)
class Delta:
    """A piece of a reply being generated; `text` is the whole reply so far."""

    text: str


@dataclass(frozen=True)
class Final:
    """The finished reply (or a command's answer, or an error message for the person)."""

    text: str
    outcome: Outcome = Outcome.OK
    sources: tuple[str, ...] = field(default=())
    usage: TokenUsage | None = field(default=None, compare=False)  # on a model's reply

    @property
    def failed(self) -> bool:
        return self.outcome not in (Outcome.OK, Outcome.COMMAND, Outcome.EMPTY)


ReplyEvent = Delta | Final
