"""One streamed reply as it arrives: its text (reasoning left out), then how it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageFunctionToolCallParam
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from bot.chat_errors import EmptyStream, StreamCut
from bot.reasoning import ThinkingFilter


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; `arguments` is its JSON text, unparsed."""

    id: str
    name: str
    arguments: str

    def message(self) -> ChatCompletionMessageFunctionToolCallParam:
        """The call as it appears in the assistant message that requested it."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Usage:
    """What the server says one call cost, in its own tokens."""

    prompt_tokens: int
    completion_tokens: int


class ReplyStream:
    """One streamed reply. Iterate it for the answer's text (reasoning left out); once it is
    done, `usage`, `finish_reason`, `cut` and `tool_calls` tell how it ended."""

    def __init__(self, chunks: AsyncIterator[ChatCompletionChunk]) -> None:
        self._chunks = chunks
        self.usage: Usage | None = None  # None: the server did not report it
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []
        self.thinking = ThinkingFilter()
        self._parts: dict[int, dict[str, str]] = {}

    @property
    def cut(self) -> bool:
        """The reply stopped at its token limit (a stream without a finish raises StreamCut)."""
        return self.finish_reason == "length"

    async def __aiter__(self) -> AsyncIterator[str]:
        seen = False
        async for chunk in self._chunks:
            seen = True
            if chunk.usage is not None:
                self.usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            self.finish_reason = choice.finish_reason or self.finish_reason
            # `reasoning_content` (and `reasoning`) are extra fields: never read as the answer.
            text = self.thinking.feed(choice.delta.content) if choice.delta.content else ""
            if text:
                yield text
            self._collect(choice.delta.tool_calls or ())
        if not seen:
            raise EmptyStream
        if self.finish_reason is None:
            raise StreamCut("the stream ended without a finish reason")
        rest = self.thinking.finish()
        if rest:
            yield rest
        self.tool_calls = [
            ToolCall(part["id"] or f"call_{index}", part["name"], part["arguments"])
            for index, part in sorted(self._parts.items())
            if part["name"]
        ]

    def _collect(self, pieces: Iterable[ChoiceDeltaToolCall]) -> None:
        # A call streams as pieces sharing an index: id and name first, arguments in parts.
        for piece in pieces:
            part = self._parts.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            part["id"] = piece.id or part["id"]
            if piece.function is not None:
                part["name"] += piece.function.name or ""
                part["arguments"] += piece.function.arguments or ""
