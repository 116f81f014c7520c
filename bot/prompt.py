"""Prompt assembly: the persona, then the newest history that fits the token budget.

Budget = (context window - reply reserve) / calibration factor - persona (- any extra context
such as search results).
Stored messages carry their token counts, so history is never re-tokenized here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from bot.chat import ChatMessage, stored_message, text_of
from bot.texts import say
from memory.store import ConversationState, Store
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter, render
from memory.window import (
    AUTHOR_NAME,
    CONTENT,
    EARLIER_UNKNOWN,
    ID,
    ROLE,
    TOKENS,
    Earlier,
    WindowRead,
)


@dataclass(frozen=True)
class Section:
    """Extra context placed after the persona (search results, recalled excerpts…)."""

    message: ChatMessage
    tokens: int
    # The window stays above this message id: the section quotes messages up to it.
    floor: int = 0


@dataclass(frozen=True)
class Newest:
    """The message being answered, already stored."""

    id: int
    text: str  # rendered
    tokens: int


@dataclass(frozen=True)
class Prompt:
    messages: list[ChatMessage]
    tokens: int
    # The id of the oldest stored message in the prompt (None: the history holds none).
    history_start: int | None = None
    shortened: bool = False
    # Messages before the history that its read returned too (for the summary).
    earlier: Earlier = EARLIER_UNKNOWN


# The name of a window read started ahead (`PromptBuilder.read_ahead`): bench/overhead.py counts
# its statements as the reply's.
READ_AHEAD = "window read ahead"


@dataclass(frozen=True)
class ReadAhead:
    """A window read started before the prompt's sections are known, for the largest window
    they could leave: `budget` tokens."""

    task: asyncio.Task[WindowRead]
    budget: int

    def discard(self) -> None:
        """Not needed after all: stopped, or its outcome (an error too) dropped."""
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled():
            self.task.exception()  # retrieved: no "never retrieved" warning


class NoRoom(Exception):
    """The persona and extra context leave no room for the message itself."""


def alternate_roles(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The prompt as one system message, then strictly alternating user/assistant turns, for
    chat templates that refuse anything else (Mistral's, among others).

    Only the persona is a system message (outside text comes quoted in user messages);
    neighbours of one role merge. Fewer messages cost fewer tokens, so the
    result still fits the budget it was built for.
    """
    system: list[str] = []
    turns: list[tuple[Literal["user", "assistant"], str]] = []
    for message in messages:
        content = text_of(message)
        if message["role"] == "system" and not turns:
            system.append(content)
            continue
        role: Literal["user", "assistant"] = (
            "assistant" if message["role"] == "assistant" else "user"
        )
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{content}")
        elif turns or role == "user":  # a window starting on a reply drops that reply
            turns.append((role, content))
    merged = [stored_message(role, content) for role, content in turns]
    return [{"role": "system", "content": "\n\n".join(system)}, *merged] if system else merged


class PromptBuilder:
    def __init__(
        self,
        store: Store,
        counter: TokenCounter,
        window: int,
        reply_reserve: int,
        strict_roles: bool = False,
    ) -> None:
        self.store = store
        self.counter = counter
        self.window = window
        self.reply_reserve = reply_reserve
        self.strict_roles = strict_roles

    def message_budget(self, system_tokens: int, factor: float = 1.0) -> int:
        """Tokens left for conversation messages once the fixed parts are paid for.

        `factor`: the model's tokens per counted token (see bot/calibration.py); the window
        and the reply are in the model's tokens, everything else in counted ones."""
        return (
            int((self.window - self.reply_reserve) / factor)
            - TOKENS_PER_REPLY
            - system_tokens
            - TOKENS_PER_MESSAGE
        )

    def read_ahead(
        self, conversation: ConversationState, newest: Newest, budget: int
    ) -> ReadAhead | None:
        """On a database that runs statements side by side (not SQLite: its one connection
        runs them in turn), start reading the window `build` will need while the sections are
        found, for `budget` (`message_budget` before any section): recall's statement and this
        read take one round trip's time rather than two. `build` keeps what fits once the
        sections are known; the read holds a few rows more than it needs."""
        if self.store.engine.dialect.name == "sqlite":
            return None
        room = budget - newest.tokens - TOKENS_PER_MESSAGE
        read = self.store.window_read(conversation, newest.id, room, TOKENS_PER_MESSAGE)
        return ReadAhead(asyncio.get_running_loop().create_task(read, name=READ_AHEAD), room)

    async def build(
        self,
        conversation: ConversationState,
        system: tuple[str, int],  # the persona and its token count
        newest: Newest,
        sections: tuple[Section, ...] = (),
        factor: float = 1.0,
        reserve: int = 0,
        ahead: ReadAhead | None = None,
    ) -> Prompt:
        """`reserve`: tokens kept free besides the reply's (e.g. for tool results); `ahead`:
        the window's read, started before the sections were known (`read_ahead`)."""
        system_text, system_tokens = system
        fixed = system_tokens + sum(s.tokens + TOKENS_PER_MESSAGE for s in sections)
        budget = self.message_budget(fixed + reserve, factor)
        if budget <= TOKENS_PER_MESSAGE:
            raise NoRoom(f"budget {budget} after {fixed} fixed tokens")

        text, tokens, shortened = newest.text, newest.tokens, False
        if tokens + TOKENS_PER_MESSAGE > budget:
            marker = say("shortened")
            keep = budget - TOKENS_PER_MESSAGE - self.counter.count(marker)
            # Tokenizing a message this large takes a while: keep it off the event loop.
            text = await asyncio.to_thread(self.counter.truncate, newest.text, max(keep, 0))
            text += marker
            tokens, shortened = self.counter.count(text), True

        room = budget - tokens - TOKENS_PER_MESSAGE
        floor = max((s.floor for s in sections), default=0)
        if ahead is not None and ahead.budget >= room:
            read = (await ahead.task).within(room, TOKENS_PER_MESSAGE, floor)
        else:
            read = await self.store.window_read(
                conversation, newest.id, room, TOKENS_PER_MESSAGE, floor
            )
        history = read.rows  # by position: thousands of rows at a 128k-token window
        messages: list[ChatMessage] = [{"role": "system", "content": system_text}]
        messages += [s.message for s in sections]
        messages += [
            stored_message(row[ROLE], render(row[ROLE], row[AUTHOR_NAME], row[CONTENT]))
            for row in history
        ]
        messages.append({"role": "user", "content": text})
        used = (
            fixed
            + TOKENS_PER_MESSAGE
            + sum(row[TOKENS] for row in history)
            + TOKENS_PER_MESSAGE * len(history)
            + tokens
            + TOKENS_PER_MESSAGE
            + TOKENS_PER_REPLY
        )
        if self.strict_roles:
            messages = alternate_roles(messages)
        start = history[0][ID] if history else None
        return Prompt(messages, used, start, shortened, read.earlier)
