"""What can be plugged into the core around a reply: context providers, guards, checks and
listeners (installed by `bot.runtime` and `bot.accounting`)."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Inbound
from bot.prompt import Prompt, Section
from memory.store import ConversationState


class ContextProvider(Protocol):
    """Adds context to a prompt (recalled excerpts, a summary, search results…).

    `budget` is what the conversation's messages could use; a provider takes its own share of
    it and reports exact token counts in its Sections, which are charged before history.
    """

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]: ...


class ReplyListener(Protocol):
    """Work after a reply is stored (e.g. a rolling summary). Runs in the background: it never
    delays the reply, and its failure never reaches the person."""

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None: ...


class MessageGuard(Protocol):
    """Checks a message before the model sees it (limits, moderation)."""

    async def admit(self, message: Inbound) -> str | None:
        """None: answer it; otherwise what to tell the person instead (nothing is stored)."""


class ReplyCheck(Protocol):
    """Checks a finished reply before it is shown or stored (reply moderation)."""

    async def check_reply(self, text: str) -> str | None:
        """None: show it; otherwise what to show instead (the reply is not stored)."""
