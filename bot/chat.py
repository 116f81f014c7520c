"""The chat-API client: any OpenAI-compatible endpoint, streamed, with errors sorted by cause.

Retries of 429/5xx/timeouts (with backoff, honouring Retry-After) are the openai client's own;
they happen before any text streams, so a retry never repeats words the person already saw.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

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

from bot.messages import Outcome
from bot.model_limits import is_reasoning_model
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
    """A stored message for the model: "system" rows are tool records, the rest a person's."""
    if role == "assistant":
        return {"role": "assistant", "content": content}
    if role == "system":
        return {"role": "system", "content": content}
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


class ChatError(Exception):
    """A failed chat call, sorted into an Outcome the person can be told about."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail


class ContextTooLong(ChatError):
    """The endpoint says the prompt exceeds its window: re-trim smaller and retry once."""

    def __init__(self, detail: str) -> None:
        super().__init__(Outcome.BAD_REQUEST, detail)


def _is_context_error(exc: openai.APIStatusError) -> bool:
    text = f"{exc.code or ''} {exc.message}".lower()
    return (
        "context_length_exceeded" in text
        or "context length" in text
        or "maximum context" in text
        or "too many tokens" in text
    )


def classify(exc: openai.APIError) -> ChatError:
    """Map an openai exception to the specific thing that went wrong."""
    detail = getattr(exc, "message", str(exc))
    if isinstance(exc, openai.APITimeoutError):
        return ChatError(Outcome.TIMEOUT, detail)
    if isinstance(exc, openai.APIConnectionError):
        return ChatError(Outcome.UNREACHABLE, detail)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ChatError(Outcome.AUTH, detail)
    if isinstance(exc, openai.NotFoundError):
        return ChatError(Outcome.MODEL_NOT_FOUND, detail)
    if isinstance(exc, openai.RateLimitError):
        quota = exc.code == "insufficient_quota"
        return ChatError(Outcome.QUOTA if quota else Outcome.RATE_LIMITED, detail)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 400 and _is_context_error(exc):
            return ContextTooLong(detail)
        if exc.status_code >= 500:
            return ChatError(Outcome.SERVER_ERROR, detail)
        return ChatError(Outcome.BAD_REQUEST, detail)
    # An error event inside a stream (no status code).
    return ChatError(Outcome.SERVER_ERROR, detail)


class ChatClient:
    def __init__(self, settings: Settings) -> None:
        self.model = settings.model
        self.max_reply_tokens = settings.max_reply_tokens
        self._client = AsyncOpenAI(
            # Local servers (Ollama, vLLM, LM Studio) accept any key; the client insists on one.
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=settings.request_timeout,
            max_retries=settings.model_retries,
        )

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        """Yield the reply's text as it is generated; raise ChatError on failure."""
        async for chunk in self._chunks(messages):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    async def stream_with_tools(
        self,
        messages: list[ChatMessage],
        tools: list[ChatCompletionFunctionToolParam],
        allow_calls: bool = True,
    ) -> AsyncIterator[str | list[ToolCall]]:
        """Like `stream`, offering `tools`; the calls the model makes come last, as one list.

        With `allow_calls` off the tools are still described (the history may hold earlier
        calls) but the model is told to answer in text.
        """
        parts: dict[int, dict[str, str]] = {}
        async for chunk in self._chunks(messages, tools, "auto" if allow_calls else "none"):
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                yield delta.content
            # A call streams as pieces sharing an index: id and name first, arguments in parts.
            for piece in delta.tool_calls or ():
                part = parts.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                part["id"] = piece.id or part["id"]
                if piece.function is not None:
                    part["name"] += piece.function.name or ""
                    part["arguments"] += piece.function.arguments or ""
        calls = [
            ToolCall(part["id"] or f"call_{index}", part["name"], part["arguments"])
            for index, part in sorted(parts.items())
            if part["name"]
        ]
        if calls:
            yield calls

    async def _chunks(
        self,
        messages: list[ChatMessage],
        tools: list[ChatCompletionFunctionToolParam] | None = None,
        tool_choice: ChatCompletionToolChoiceOptionParam | None = None,
    ) -> AsyncIterator[ChatCompletionChunk]:
        try:
            limit = "max_completion_tokens" if is_reasoning_model(self.model) else "max_tokens"
            body: dict[str, object] = {
                "model": self.model,
                "messages": messages,
                "stream": True,
                limit: self.max_reply_tokens,
            }
            if tools:
                body["tools"] = tools
                if tool_choice:
                    body["tool_choice"] = tool_choice
            stream = await self._post_stream(body, len(messages) > _OFFLOAD_MESSAGES)
            async with stream:
                async for chunk in stream:
                    yield chunk
        except openai.APIError as exc:
            error = classify(exc)
            log.warning("chat call failed: %s", error, extra={"model": self.model})
            raise error from exc

    async def _post_stream(
        self, body: dict[str, object], large: bool
    ) -> AsyncStream[ChatCompletionChunk]:
        """POST a chat request whose body is already plain JSON data.

        `chat.completions.create` first runs the package's recursive type transform over every
        message (~0.1 ms each, on the event loop: most of the time spent around the model).
        Our messages are plain dicts of strings, so the request goes out through the client's
        own `post` (same auth, retries and errors) as JSON encoded here; a large prompt is
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

    async def embed(self, model: str, texts: list[str], retries: bool = True) -> list[list[float]]:
        """One vector per text from `/v1/embeddings` (same endpoint and key as chat); raise
        ChatError on failure."""
        client = self._client if retries else self._client.with_options(max_retries=0)
        try:
            response = await client.embeddings.create(
                model=model, input=texts, encoding_format="float"
            )
        except openai.APIError as exc:
            raise classify(exc) from exc
        return [item.embedding for item in sorted(response.data, key=lambda item: item.index)]

    async def close(self) -> None:
        await self._client.close()
