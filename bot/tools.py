"""Tools the model can call (function calling), run by the core between model calls.

A tool answers within a token budget the core gives it, and hands back what the model reads,
a compact record for the conversation's history and the sources it drew on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from openai.types.chat import ChatCompletionFunctionToolParam

from bot.chat import ChatClient, ChatMessage, ToolCall
from bot.texts import say
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter


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


class Tool(Protocol):
    name: str
    room: int  # tokens to keep free in a prompt for this tool's results

    @property
    def definition(self) -> ChatCompletionFunctionToolParam:
        """The OpenAI "tools" entry."""

    def arguments_for(self, text: str) -> str:
        """The call's JSON arguments when a person forces this tool on `text` (`/search`)."""

    async def run(self, arguments: str, budget: int, first_source: int) -> ToolResult:
        """Run one call; the result fits `budget` tokens and numbers sources from
        `first_source`. Failures become a result that says so: it never raises for them."""


# A call the model makes that is not run still needs an answer in the conversation.
_REFUSED = "Not run: {why}. Answer with what you have."
# Enough for the longest refusal, and the least worth giving a tool for its results.
_REFUSAL_TOKENS = 40
_MIN_RESULT_TOKENS = 60


def reserve(tools: Sequence[Tool], counter: TokenCounter, budget: int) -> int:
    """Tokens a prompt keeps free for offering `tools` and for their results."""
    if not tools:
        return 0
    return counter.count(json.dumps([tool.definition for tool in tools])) + min(
        max(tool.room for tool in tools), budget // 3
    )


class ToolRun:
    """One reply's exchange with the model: stream its text, run the tools it calls (at most
    `max_calls`, within `room` tokens), call it again with the results, until it answers.

    `results` holds each run call's tool name and result, in order.
    """

    def __init__(
        self,
        chat: ChatClient,
        tools: Sequence[Tool],
        counter: TokenCounter,
        max_calls: int,
        room: int,
    ) -> None:
        self.chat = chat
        self.tools = {tool.name: tool for tool in tools}
        self.counter = counter
        self.calls_left = max_calls
        self.room = room
        self.results: list[tuple[str, ToolResult]] = []

    @property
    def sources(self) -> int:
        return sum(len(result.sources) for _, result in self.results)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        if not self.tools:
            async for piece in self.chat.stream(messages):
                yield piece
            return
        messages = list(messages)
        definitions = [tool.definition for tool in self.tools.values()]
        self.room -= self.counter.count(json.dumps(definitions))
        said = False
        while True:
            text, calls = "", []
            async for part in self.chat.stream_with_tools(
                messages, definitions, allow_calls=self.calls_left > 0
            ):
                if isinstance(part, list):
                    calls = part
                    continue
                if said and not text:
                    yield "\n\n"  # text before a search and the answer after it
                text += part
                yield part
            said = said or bool(text)
            if not calls or self.calls_left <= 0:
                return
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
                content = await self._answer(call, self.room - TOKENS_PER_MESSAGE - later)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})

    async def _answer(self, call: ToolCall, budget: int) -> str:
        tool = self.tools.get(call.name)
        if tool is None:
            return self._refuse(f"there is no tool named {call.name!r}", budget)
        if self.calls_left <= 0:
            return self._refuse("the limit of calls for one reply is reached", budget)
        if budget < _MIN_RESULT_TOKENS:
            return self._refuse("no room is left in the context window", budget)
        self.calls_left -= 1
        # Leave the later allowed calls half of what is left.
        share = budget if self.calls_left == 0 else budget // 2
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
    blocks = ["\n".join(lines)] if lines else []
    blocks += list(notices)
    return "".join(f"\n\n{block}" for block in blocks), tuple(source.url for source in cited)
