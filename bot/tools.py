"""Tools the model can call (function calling), run by the core between model calls.

A tool answers within a token budget the core gives it, and hands back what the model reads,
a compact record for the conversation's history and the sources it drew on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from openai.types.chat import ChatCompletionFunctionToolParam

from bot.chat import ChatClient, ChatMessage
from bot.reply_stream import ReplyStream, ToolCall, Usage
from bot.texts import say
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    number: int  # as cited in the reply: [number]
    title: str
    url: str


@dataclass(frozen=True)
class ToolResult:
    content: str  # what the model reads, within the budget it was given
    tokens: int
    record: str = ""  # kept in the history so follow-ups can refer to it; "" keeps nothing
    record_tokens: int = 0
    sources: tuple[Source, ...] = ()
    notice: str | None = None  # told to the person under the reply (e.g. search unavailable)
    used: str = ""  # shown under the reply as a tool used (e.g. "time/get_current_time")


class Tool(Protocol):
    name: str
    room: int  # tokens to keep free in a prompt for this tool's results
    max_calls: int | None  # calls per reply (None: bounded by the rounds and the budget)

    @property
    def definition(self) -> ChatCompletionFunctionToolParam:
        """The OpenAI "tools" entry."""

    def arguments_for(self, text: str) -> str:
        """The call's JSON arguments when a person forces this tool on `text` (`/search`)."""

    async def run(self, arguments: str, budget: int, first_source: int) -> ToolResult:
        """Run one call; the result fits `budget` tokens and numbers sources from
        `first_source`. Failures become a result that says so: it never raises for them."""


class ToolSource(Protocol):
    """Tools that come and go (e.g. MCP servers), offered per message."""

    def tools_for(self, admin: bool) -> list[Tool]:
        """The tools a message may trigger; `admin`: its author is an admin here."""

    def status(self, admin: bool) -> list[str]:
        """What is unavailable right now, one line each (for `/tools`)."""


def available(tools: dict[str, Tool], sources: Sequence[ToolSource], admin: bool) -> list[Tool]:
    """The tools offered on one message."""
    return [*tools.values(), *(tool for source in sources for tool in source.tools_for(admin))]


# A call the model makes that is not run still needs an answer in the conversation.
_REFUSED = "Not run: {why}. Answer with what you have."
# Enough for the longest refusal, and the least worth giving a tool for its results.
_REFUSAL_TOKENS = 40
_MIN_RESULT_TOKENS = 60


# Replies offered tools without a single call before the model is taken to ignore them.
IGNORED_AFTER = 3


def reserve(tools: Sequence[Tool], counter: TokenCounter, budget: int, results: bool = True) -> int:
    """Tokens a prompt keeps free for offering `tools` and (with `results`) their results."""
    if not tools:
        return 0
    definitions = counter.count(json.dumps([tool.definition for tool in tools]))
    return definitions + (min(max(tool.room for tool in tools), budget // 3) if results else 0)


class ToolUse:
    """Whether the model calls the tools it is offered. Small local models often ignore them
    (no error, no calls): then no room is kept for results that never come."""

    def __init__(self) -> None:
        self.offers = 0
        self.called = False

    @property
    def ignored(self) -> bool:
        return not self.called and self.offers >= IGNORED_AFTER

    def note(self, run: ToolRun) -> None:
        if not run.tools:
            return
        was_ignored = self.ignored
        self.offers += 1
        self.called = self.called or any(call.tool_calls for call in run.calls)
        if self.ignored and not was_ignored:
            log.warning(
                "the model has not called the tools it was offered in %d replies: no room is "
                "kept for their results. Set PARLEY_SEARCH_MODE=always to search on every "
                "message instead.",
                self.offers,
            )


class ToolRun:
    """One reply's exchange with the model: stream its text, run the tools it calls (at most
    `max_rounds` times, each tool within its own `max_calls`, all within `room` tokens), call
    it again with the results, until it answers.

    `results` holds each run call's tool name and result, in order.
    """

    def __init__(
        self,
        chat: ChatClient,
        tools: Sequence[Tool],
        counter: TokenCounter,
        max_rounds: int,
        room: int,
    ) -> None:
        self.chat = chat
        self.tools = {tool.name: tool for tool in tools}
        self.counter = counter
        self.rounds_left = max_rounds
        self.calls_left = {tool.name: tool.max_calls for tool in tools}
        self.room = room
        self.results: list[tuple[str, ToolResult]] = []
        self.calls: list[ReplyStream] = []
        self.definition_tokens = 0  # the tool definitions sent with each call

    @property
    def usage(self) -> Usage | None:
        """What the server says this reply's calls cost, summed; None if it did not say."""
        reported = [call.usage for call in self.calls if call.usage is not None]
        if not reported:
            return None
        return Usage(
            sum(usage.prompt_tokens for usage in reported),
            sum(usage.completion_tokens for usage in reported),
        )

    @property
    def can_call(self) -> bool:
        """Whether another round of calls may run (a round left, and a tool with calls left)."""
        return self.rounds_left > 0 and any(
            left is None or left > 0 for left in self.calls_left.values()
        )

    @property
    def sources(self) -> int:
        return sum(len(result.sources) for _, result in self.results)

    async def stream(
        self, messages: list[ChatMessage], max_tokens: int | None = None, counted: int | None = None
    ) -> AsyncIterator[str]:
        """The reply's text; every model call made is kept in `calls` (usage, how it ended).
        `counted`: the tokens of `messages` as budgeted, so that usage records need not count
        each request again."""
        if not self.tools:
            reply = self.chat.stream(messages, max_tokens=max_tokens, counted=counted)
            self.calls.append(reply)
            async for piece in reply:
                yield piece
            return
        messages = list(messages)
        definitions = [tool.definition for tool in self.tools.values()]
        self.definition_tokens = self.counter.count(json.dumps(definitions))
        first_room = self.room
        self.room -= self.definition_tokens
        said = False
        while True:
            text = ""
            allowed = self.can_call
            # The definitions and every message added since are what the room was charged.
            sent = None if counted is None else counted + first_room - self.room
            reply = self.chat.stream(
                messages,
                max_tokens=max_tokens,
                tools=definitions,
                allow_calls=allowed,
                counted=sent,
            )
            self.calls.append(reply)
            async for part in reply:
                if said and not text:
                    yield "\n\n"  # text before a search and the answer after it
                text += part
                yield part
            calls = reply.tool_calls
            said = said or bool(text)
            if not calls or not allowed:
                return
            self.rounds_left -= 1
            asked = [call.message() for call in calls]
            messages.append({"role": "assistant", "content": text or None, "tool_calls": asked})
            self.room -= (
                TOKENS_PER_MESSAGE
                + self.counter.count(text)
                + self.counter.count(json.dumps(asked))
            )
            for index, call in enumerate(calls):
                # Keep enough room to answer the calls after this one, if only with a refusal.
                later = (len(calls) - index - 1) * (TOKENS_PER_MESSAGE + _REFUSAL_TOKENS)
                budget = self.room - TOKENS_PER_MESSAGE - later
                content = await self._answer(call, budget, last=not later)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    async def _answer(self, call: ToolCall, budget: int, last: bool) -> str:
        tool = self.tools.get(call.name)
        if tool is None:
            return self._refuse(f"there is no tool named {call.name!r}", budget)
        left = self.calls_left[tool.name]
        if left is not None and left <= 0:
            return self._refuse("the limit of calls for one reply is reached", budget)
        if budget < _MIN_RESULT_TOKENS:
            return self._refuse("no room is left in the context window", budget)
        if left is not None:
            self.calls_left[tool.name] = left - 1
        # Leave the calls that may follow half of what is left.
        share = budget if last and not self.can_call else budget // 2
        result = await tool.run(call.arguments, share, self.sources + 1)
        self.results.append((tool.name, result))
        self.room -= TOKENS_PER_MESSAGE + result.tokens
        return result.content

    def _refuse(self, why: str, budget: int) -> str:
        text = self.counter.truncate(_REFUSED.format(why=why), max(budget, 0))
        self.room -= TOKENS_PER_MESSAGE + self.counter.count(text)
        return text


def footer(results: Sequence[ToolResult], text: str) -> tuple[str, tuple[str, ...]]:
    """The "Sources:" list and notices shown under a reply, and the source URLs.

    Lists the sources the reply cites as [n]; all of them when it cites none.
    """
    sources = [source for result in results for source in result.sources]
    cited = [source for source in sources if f"[{source.number}]" in text] or sources
    lines = []
    if cited:
        lines.append(say("search.sources"))
        lines += [
            say("search.source", number=source.number, title=source.title, url=source.url)
            for source in cited
        ]
    notices = dict.fromkeys(result.notice for result in results if result.notice)
    used = dict.fromkeys(result.used for result in results if result.used)
    blocks = ["\n".join(lines)] if lines else []
    if used:
        blocks.append(say("tools.used", tools=", ".join(used)))
    blocks += list(notices)
    return "".join(f"\n\n{block}" for block in blocks), tuple(source.url for source in cited)
