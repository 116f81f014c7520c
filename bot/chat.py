"""The chat-API client: any OpenAI-compatible endpoint, streamed, with errors sorted by cause.

Retries of 429/5xx/timeouts (with backoff, honouring Retry-After) are the openai client's own;
they happen before any text streams, so a retry never repeats words the person already saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from bot.chat_errors import ChatError as ChatError
from bot.chat_errors import ContextTooLong as ContextTooLong
from bot.chat_errors import EmptyStream as EmptyStream
from bot.chat_errors import classify as classify
from bot.messages import Outcome
from bot.model_calls import ReplyFirst, retry_delay
from bot.model_limits import is_reasoning_model
from bot.quoting import quoted_record
from bot.reasoning import ThinkingFilter
from bot.settings import Settings

log = logging.getLogger(__name__)

# Prompts with more messages than this are encoded to JSON in a worker thread.
_OFFLOAD_MESSAGES = 500


def _json_bytes(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# The openai package's own types: a mistyped message fails mypy, not the endpoint.
ChatMessage = ChatCompletionMessageParam


def text_of(message: ChatMessage) -> str:
    """A message's text; of a multi-part content, its text parts."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part["text"] for part in content if part["type"] == "text")


def stored_message(role: str, content: str) -> ChatMessage:
    """A stored message for the model: "system" rows are tool records (e.g. a search's
    results), quoted in a user message like all outside text; the rest a person's."""
    if role == "assistant":
        return {"role": "assistant", "content": content}
    if role == "system":
        return {"role": "user", "content": quoted_record(content)}
    return {"role": "user", "content": content}


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
class Embeddings:
    vectors: list[list[float]]  # one per text
    per_token: bool  # the server sent one vector per token: these are their means


def _pooled(vector: list[Any]) -> list[float]:
    if vector and isinstance(vector[0], list):
        import numpy as np  # only for servers sending a vector per token

        return [float(x) for x in np.asarray(vector, dtype=np.float64).mean(axis=0)]
    return [float(x) for x in vector]


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
        """The reply stopped before its end: its token limit, or a stream without a finish."""
        return self.finish_reason in (None, "length")

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


class ChatClient:
    """Calls to the chat endpoint. Failed calls are retried here (not by the openai client):
    429, 5xx and unreachable ones with backoff, honouring Retry-After, before any text
    streams; timeouts only against OpenAI itself (a local server is still computing)."""

    def __init__(self, settings: Settings) -> None:
        self.model = settings.model
        self.max_reply_tokens = settings.max_reply_tokens
        self.retries = settings.model_retries
        self._timeout = settings.request_timeout
        self._retry_timeouts = settings.uses_default_endpoint
        self._usage_option = True  # ask for usage in streams, unless the server refuses it
        self.turns = ReplyFirst()
        self._client = AsyncOpenAI(
            # Local servers (Ollama, vLLM, LM Studio) accept any key; the client insists on one.
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=settings.request_timeout,
            max_retries=0,
        )

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int | None = None,
        tools: list[ChatCompletionFunctionToolParam] | None = None,
        allow_calls: bool = True,
        background: bool = False,
    ) -> ReplyStream:
        """The reply to `messages`, streamed; iterating it raises ChatError on failure.

        `max_tokens` caps the reply below PARLEY_MAX_REPLY_TOKENS (what the window leaves).
        With `tools` the calls the model makes end up in `tool_calls`; with `allow_calls` off
        the tools are still described (the history may hold earlier calls) but the model is
        told to answer in text. A `background` call (a summary) waits until no reply is in
        flight.
        """
        limit = min(max_tokens or self.max_reply_tokens, self.max_reply_tokens)
        choice: ChatCompletionToolChoiceOptionParam = "auto" if allow_calls else "none"
        return ReplyStream(self._chunks(messages, max(limit, 1), tools, choice, background))

    async def _chunks(
        self,
        messages: list[ChatMessage],
        limit: int,
        tools: list[ChatCompletionFunctionToolParam] | None,
        tool_choice: ChatCompletionToolChoiceOptionParam,
        background: bool,
    ) -> AsyncIterator[ChatCompletionChunk]:
        attempt = 0
        async with self.turns.turn(background):
            while True:
                try:
                    stream = await self._post_stream(
                        self._body(messages, limit, tools, tool_choice),
                        len(messages) > _OFFLOAD_MESSAGES,
                    )
                except openai.APIError as exc:
                    error = classify(exc)
                    if self._refuses_usage(error):
                        continue
                    delay = await self._may_retry(error, exc, attempt)
                    if delay is None:
                        raise error from exc
                    attempt += 1
                    continue
                async for chunk in self._read(stream):
                    yield chunk
                return

    def _body(
        self,
        messages: list[ChatMessage],
        limit: int,
        tools: list[ChatCompletionFunctionToolParam] | None,
        tool_choice: ChatCompletionToolChoiceOptionParam,
    ) -> dict[str, object]:
        """The request as plain JSON data (see `_post_stream`)."""
        reasoning = is_reasoning_model(self.model)
        body: dict[str, object] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_completion_tokens" if reasoning else "max_tokens": limit,
        }
        if self._usage_option:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = tool_choice
        return body

    async def _read(
        self, stream: openai.AsyncStream[ChatCompletionChunk]
    ) -> AsyncIterator[ChatCompletionChunk]:
        # Text may already be shown: a failure now is never retried (it would repeat words).
        try:
            async with stream:
                async for chunk in stream:
                    yield chunk
        except openai.APIError as exc:
            error = classify(exc)
            if error.outcome is Outcome.TIMEOUT:
                self.turns.still_computing(self._timeout)
            log.warning("chat stream failed: %s", error, extra={"model": self.model})
            raise error from exc

    async def _may_retry(
        self, error: ChatError, exc: openai.APIError, attempt: int
    ) -> float | None:
        """Wait before another try and return the delay; None: give up (logged)."""
        delay = retry_delay(error, exc, attempt, self._retry_timeouts)
        if error.outcome is Outcome.TIMEOUT and delay is None:
            self.turns.still_computing(self._timeout)
        if delay is None or attempt >= self.retries:
            log.warning("chat call failed: %s", error, extra={"model": self.model})
            return None
        log.info("chat call failed (%s); retrying in %.1f s", error.outcome, delay)
        await asyncio.sleep(delay)
        return delay

    def _refuses_usage(self, error: ChatError) -> bool:
        """An older server rejecting `stream_options`: ask without it from now on."""
        if not self._usage_option or error.outcome is not Outcome.BAD_REQUEST:
            return False
        if "stream_options" not in error.detail and "include_usage" not in error.detail:
            return False
        log.warning("the endpoint refuses stream_options; token usage will not be reported")
        self._usage_option = False
        return True

    async def _post_stream(
        self, body: dict[str, object], large: bool
    ) -> AsyncStream[ChatCompletionChunk]:
        """POST a chat request whose body is already plain JSON data.

        `chat.completions.create` first runs the package's recursive type transform over every
        message (~0.1 ms each, on the event loop: most of the time spent around the model).
        Our messages are plain dicts of strings, so the request goes out through the client's
        own `post` (same auth and errors) as JSON encoded here; a large prompt is
        encoded in a worker thread.
        """
        encoded = await asyncio.to_thread(_json_bytes, body) if large else _json_bytes(body)
        return await self._client.post(
            "/chat/completions",
            content=encoded,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )

    async def embed(self, model: str, texts: list[str], waiting: bool = False) -> Embeddings:
        """One vector per text from `/v1/embeddings` (same endpoint and key as chat); raise
        ChatError on failure. While a person `waiting` for a reply: one attempt, no queueing
        behind replies; otherwise a background call (see ReplyFirst), retried."""
        attempt = 0
        async with contextlib.nullcontext() if waiting else self.turns.background():
            while True:
                try:
                    response = await self._client.embeddings.create(
                        model=model, input=texts, encoding_format="float"
                    )
                    break
                except openai.APIError as exc:
                    error = classify(exc)
                    delay = None if waiting else await self._may_retry(error, exc, attempt)
                    if delay is None:
                        raise error from exc
                    attempt += 1
        items = sorted(response.data, key=lambda item: item.index)
        # Servers without pooling (llama-cpp-python) send a vector per token: a list of lists,
        # which the openai package passes through unchecked.
        raw: list[Any] = [item.embedding for item in items]
        per_token = any(vector and isinstance(vector[0], list) for vector in raw)
        return Embeddings([_pooled(vector) for vector in raw], per_token)

    async def close(self) -> None:
        await self._client.close()
