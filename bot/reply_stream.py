"""One streamed reply as it arrives: its text (reasoning left out), then how it ended.

Chunks are read as the JSON the server sent: building the openai package's pydantic model of
each one cost more than the rest of reading the stream. Servers differ in what they leave out,
so every field is optional here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionMessageFunctionToolCallParam

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


Chunk = dict[str, Any]  # one streamed chunk's JSON


def usage_of(chunk: Chunk) -> Usage | None:
    """The usage a chunk reports (the last one, when asked for), if it reports it whole."""
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def delta_of(chunk: Chunk) -> tuple[dict[str, Any], str | None]:
    """The first choice's delta and finish reason (empty and None in a usage-only chunk)."""
    choices = chunk.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        return {}, None
    delta, finish_reason = choice.get("delta"), choice.get("finish_reason")
    return (
        delta if isinstance(delta, dict) else {},
        finish_reason if isinstance(finish_reason, str) else None,
    )


def tool_pieces(delta: dict[str, Any]) -> list[dict[str, Any]]:
    pieces = delta.get("tool_calls")
    return [piece for piece in pieces if isinstance(piece, dict)] if pieces else []


def function_of(piece: dict[str, Any]) -> tuple[str, str]:
    """A tool call piece's name and arguments parts (either may be missing)."""
    function = piece.get("function")
    if not isinstance(function, dict):
        return "", ""
    return function.get("name") or "", function.get("arguments") or ""


class ReplyStream:
    """One streamed reply. Iterate it for the answer's text (reasoning left out); once it is
    done, `usage`, `finish_reason`, `cut` and `tool_calls` tell how it ended."""

    def __init__(self, chunks: AsyncIterator[Chunk]) -> None:
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
            self.usage = usage_of(chunk) or self.usage
            delta, finish_reason = delta_of(chunk)
            self.finish_reason = finish_reason or self.finish_reason
            # `reasoning_content` (and `reasoning`) are other fields: never read as the answer.
            content = delta.get("content")
            text = self.thinking.feed(content) if isinstance(content, str) and content else ""
            if text:
                yield text
            self._collect(tool_pieces(delta))
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

    def _collect(self, pieces: list[dict[str, Any]]) -> None:
        # A call streams as pieces sharing an index: id and name first, arguments in parts.
        for piece in pieces:
            index = piece.get("index")
            part = self._parts.setdefault(
                index if isinstance(index, int) else 0, {"id": "", "name": "", "arguments": ""}
            )
            part["id"] = piece.get("id") or part["id"]
            name, arguments = function_of(piece)
            part["name"] += name
            part["arguments"] += arguments
