"""The chat-API client: any OpenAI-compatible endpoint, streamed, with errors sorted by cause.

Chat streams go out through `bot.chat_http` (aiohttp); embeddings and moderation through the
openai package. Retries of 429/5xx/timeouts (with backoff, honouring Retry-After) are
`ChatClient`'s; they happen before any text streams, so a retry never repeats words the person
already saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import openai
from openai import AsyncOpenAI, omit
from openai.types import Moderation
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
)

from bot.chat_errors import ChatError as ChatError
from bot.chat_errors import ContextTooLong as ContextTooLong
from bot.chat_errors import EmptyStream as EmptyStream
from bot.chat_errors import StreamCut as StreamCut
from bot.chat_errors import classify as classify
from bot.chat_http import ChatHttp, StreamedReply
from bot.messages import Outcome
from bot.model_calls import ReplyFirst, retry_delay
from bot.model_limits import is_reasoning_model
from bot.quoting import quoted_record
from bot.reply_stream import (
    Chunk,
    ReplyStream,
    Usage,
    delta_of,
    function_of,
    tool_pieces,
    usage_of,
)
from bot.settings import Settings

log = logging.getLogger(__name__)

# Request bodies as compact UTF-8 JSON: the bytes of `json.dumps(body, ensure_ascii=False,
# separators=(",", ":")).encode()` for strings (escapes included), integers and booleans (a
# float in a tool's schema may be spelt otherwise, 1e-05 as 0.00001: the same number), ~12x
# faster. A 128k-token prompt (2,100 messages, 265 KB) takes ~0.13 ms rather than ~1.7 ms in a
# worker thread, whose handoff alone now costs more than the encoding.
_encode_json = msgspec.json.Encoder().encode


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
class Embeddings:
    vectors: list[list[float]]  # one per text
    per_token: bool  # the server sent one vector per token: these are their means


@dataclass(frozen=True)
class ModelCall:
    """One finished model call, for usage records. The token figures are the server's (None
    when it reported none); `request` (messages sent or texts embedded) and `received` (text
    and tool-call arguments) let the recorder count them itself instead, unless `counted`
    already holds the request's tokens as budgeted when it was built."""

    model: str
    request: list[ChatMessage] | list[str]
    received: str
    prompt_tokens: int | None
    reply_tokens: int | None
    embedding: bool = False
    counted: int | None = None


class CallMeter(Protocol):
    """Watches every model call: a slot to wait for before it (a concurrency cap) and a
    record after it."""

    def slot(self) -> AbstractAsyncContextManager[object]: ...

    async def record(self, call: ModelCall) -> None: ...


def _received(chunk: Chunk) -> str:
    delta, _finish = delta_of(chunk)
    content = delta.get("content")
    calls = "".join("".join(function_of(piece)) for piece in tool_pieces(delta))
    return (content if isinstance(content, str) else "") + calls


def _pooled(vector: list[Any]) -> list[float]:
    if vector and isinstance(vector[0], list):
        import numpy as np  # only for servers sending a vector per token

        return [float(x) for x in np.asarray(vector, dtype=np.float64).mean(axis=0)]
    return [float(x) for x in vector]


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
        self._http = ChatHttp(self._client, settings.request_timeout)
        self.meter: CallMeter | None = None  # set by the runtime: usage and concurrency

    def _slot(self) -> AbstractAsyncContextManager[object]:
        return self.meter.slot() if self.meter else nullcontext()

    async def _record(self, call: ModelCall) -> None:
        if self.meter is not None:
            await self.meter.record(call)

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int | None = None,
        tools: list[ChatCompletionFunctionToolParam] | None = None,
        allow_calls: bool = True,
        background: bool = False,
        counted: int | None = None,
    ) -> ReplyStream:
        """The reply to `messages`, streamed; iterating it raises ChatError on failure.

        `max_tokens` caps the reply below PARLEY_MAX_REPLY_TOKENS (what the window leaves).
        With `tools` the calls the model makes end up in `tool_calls`; with `allow_calls` off
        the tools are still described (the history may hold earlier calls) but the model is
        told to answer in text. A `background` call (a summary) waits until no reply is in
        flight. `counted`: the request's tokens (tool definitions included) as budgeted, recorded
        as its usage when the server reports none.
        """
        limit = min(max_tokens or self.max_reply_tokens, self.max_reply_tokens)
        choice: ChatCompletionToolChoiceOptionParam = "auto" if allow_calls else "none"
        return ReplyStream(
            self._chunks(messages, max(limit, 1), tools, choice, background, counted)
        )

    async def _chunks(
        self,
        messages: list[ChatMessage],
        limit: int,
        tools: list[ChatCompletionFunctionToolParam] | None,
        tool_choice: ChatCompletionToolChoiceOptionParam,
        background: bool,
        counted: int | None,
    ) -> AsyncIterator[Chunk]:
        attempt = 0
        # The slot (PARLEY_MAX_CONCURRENT_REPLIES) is held while retries wait too.
        async with self.turns.turn(background), self._slot():
            while True:
                try:
                    stream = await self._post_stream(
                        self._body(messages, limit, tools, tool_choice)
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
                received: list[str] = []
                usage: Usage | None = None
                try:
                    async for chunk in self._read(stream):
                        usage = usage_of(chunk) or usage
                        received.append(_received(chunk))
                        yield chunk
                except ChatError:
                    if received:  # cut after it began: what was sent is still paid for
                        await self._record(self._call(messages, received, usage, counted))
                    raise
                await self._record(self._call(messages, received, usage, counted))
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

    async def _read(self, stream: StreamedReply) -> AsyncIterator[Chunk]:
        # Text may already be shown: a failure now is never retried (it would repeat words).
        began = False
        try:
            async for chunk in stream.chunks():
                began = True
                yield chunk
        except openai.APIError as exc:
            error = classify(exc)
            if error.outcome is Outcome.TIMEOUT:
                self.turns.still_computing(self._timeout)
            log.warning("chat stream failed: %s", error, extra={"model": self.model})
            # The endpoint was reached (its stream had begun): never "unreachable".
            dropped = error.outcome is Outcome.UNREACHABLE
            if dropped or (began and not isinstance(error, ContextTooLong)):
                raise StreamCut(error.detail) from exc
            raise error from exc

    def _call(
        self,
        messages: list[ChatMessage],
        received: list[str],
        usage: Usage | None,
        counted: int | None,
    ) -> ModelCall:
        return ModelCall(
            self.model,
            messages,
            "".join(received),
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
            counted=counted,
        )

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

    async def _post_stream(self, body: dict[str, object]) -> StreamedReply:
        """POST a chat request whose body is already plain JSON data.

        `chat.completions.create` first runs the openai package's recursive type transform over
        every message (~0.1 ms each, on the event loop), and its request path costs more than
        the rest of a reply's work around the model: our messages are plain dicts of strings,
        encoded here and sent by `ChatHttp`. The stream yields each chunk's JSON as sent.
        """
        return await self._http.post(_encode_json(body))

    async def embed(self, model: str, texts: list[str], waiting: bool = False) -> Embeddings:
        """One vector per text from `/v1/embeddings` (same endpoint and key as chat); raise
        ChatError on failure. While a person `waiting` for a reply: one attempt, no queueing
        behind replies; otherwise a background call (see ReplyFirst), retried."""
        attempt = 0
        async with contextlib.nullcontext() if waiting else self.turns.background(), self._slot():
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
        usage = response.usage.prompt_tokens if response.usage else None
        await self._record(ModelCall(model, texts, "", usage, 0, embedding=True))
        items = sorted(response.data, key=lambda item: item.index)
        # Servers without pooling (llama-cpp-python) send a vector per token: a list of lists,
        # which the openai package passes through unchecked.
        raw: list[Any] = [item.embedding for item in items]
        per_token = any(vector and isinstance(vector[0], list) for vector in raw)
        return Embeddings([_pooled(vector) for vector in raw], per_token)

    async def moderate(self, text: str, model: str | None = None) -> list[Moderation]:
        """The endpoint's `/v1/moderations` verdicts on `text`; raise ChatError on failure."""
        try:
            response = await self._client.moderations.create(input=text, model=model or omit)
        except openai.APIError as exc:
            raise classify(exc) from exc
        return response.results

    async def close(self) -> None:
        await self._http.close()
        await self._client.close()
