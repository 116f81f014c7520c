"""The chat-API client: any OpenAI-compatible endpoint, streamed, with errors sorted by cause.

Retries of 429/5xx/timeouts (with backoff, honouring Retry-After) are the openai client's own;
they happen before any text streams, so a retry never repeats words the person already saw.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from bot.messages import Outcome
from bot.model_limits import is_reasoning_model
from bot.overflow import Overflow, recognise
from bot.reasoning import ThinkingFilter
from bot.settings import Settings

log = logging.getLogger(__name__)

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
    """The endpoint says the prompt exceeds its window: re-trim smaller and retry.

    `overflow` holds what the server said about it (its count of the prompt, its window);
    `empty` marks a probable overflow: a stream that ended without a word (llama-cpp-python
    answers a streamed prompt longer than its window with an empty 200)."""

    def __init__(self, detail: str, overflow: Overflow | None = None, empty: bool = False) -> None:
        super().__init__(Outcome.BAD_REQUEST, detail)
        self.overflow = overflow or Overflow()
        self.empty = empty


class EmptyStream(ChatError):
    """The stream ended without a single chunk: no answer, no finish, no error."""

    def __init__(self) -> None:
        super().__init__(Outcome.SERVER_ERROR, "the endpoint sent an empty stream")


def _detail(exc: openai.APIError) -> str:
    """The error's message; servers that send `{"error": "text"}` (LM Studio, Ollama) or plain
    text have it only in the body."""
    detail = getattr(exc, "message", str(exc))
    body = exc.body
    said = body.get("error") if isinstance(body, dict) else body
    if isinstance(said, str) and said and said not in detail:
        detail = f"{detail} - {said}"
    return detail


def classify(exc: openai.APIError) -> ChatError:
    """Map an openai exception to the specific thing that went wrong."""
    detail = _detail(exc)
    if isinstance(exc, openai.APITimeoutError):
        return ChatError(Outcome.TIMEOUT, detail)
    if isinstance(exc, openai.APIConnectionError):
        return ChatError(Outcome.UNREACHABLE, detail)
    if isinstance(exc, openai.APIStatusError):
        overflow = recognise(exc.status_code, exc.code, detail)
        if overflow is not None:
            return ContextTooLong(detail, overflow)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ChatError(Outcome.AUTH, detail)
    if isinstance(exc, openai.NotFoundError):
        return ChatError(Outcome.MODEL_NOT_FOUND, detail)
    if isinstance(exc, openai.RateLimitError):
        quota = exc.code == "insufficient_quota"
        return ChatError(Outcome.QUOTA if quota else Outcome.RATE_LIMITED, detail)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ChatError(Outcome.SERVER_ERROR, detail)
        return ChatError(Outcome.BAD_REQUEST, detail)
    # An error event inside a stream (no status code).
    return ChatError(Outcome.SERVER_ERROR, detail)


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
    def __init__(self, settings: Settings) -> None:
        self.model = settings.model
        self.max_reply_tokens = settings.max_reply_tokens
        self._usage_option = True  # ask for usage in streams, unless the server refuses it
        self._client = AsyncOpenAI(
            # Local servers (Ollama, vLLM, LM Studio) accept any key; the client insists on one.
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url,
            timeout=settings.request_timeout,
            max_retries=settings.model_retries,
        )

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int | None = None,
        tools: list[ChatCompletionFunctionToolParam] | None = None,
        allow_calls: bool = True,
    ) -> ReplyStream:
        """The reply to `messages`, streamed; iterating it raises ChatError on failure.

        `max_tokens` caps the reply below PARLEY_MAX_REPLY_TOKENS (what the window leaves).
        With `tools` the calls the model makes end up in `tool_calls`; with `allow_calls` off
        the tools are still described (the history may hold earlier calls) but the model is
        told to answer in text.
        """
        limit = min(max_tokens or self.max_reply_tokens, self.max_reply_tokens)
        choice: ChatCompletionToolChoiceOptionParam = "auto" if allow_calls else "none"
        return ReplyStream(self._chunks(messages, max(limit, 1), tools, choice))

    async def _chunks(
        self,
        messages: list[ChatMessage],
        limit: int,
        tools: list[ChatCompletionFunctionToolParam] | None,
        tool_choice: ChatCompletionToolChoiceOptionParam,
    ) -> AsyncIterator[ChatCompletionChunk]:
        reasoning = is_reasoning_model(self.model)
        while True:
            try:
                stream = await self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True} if self._usage_option else omit,
                    max_tokens=omit if reasoning else limit,
                    max_completion_tokens=limit if reasoning else omit,
                    tools=tools or omit,
                    tool_choice=tool_choice if tools else omit,
                )
                async with stream:
                    async for chunk in stream:
                        yield chunk
                return
            except openai.APIError as exc:
                error = classify(exc)
                if self._refuses_usage(error):
                    continue
                log.warning("chat call failed: %s", error, extra={"model": self.model})
                raise error from exc

    def _refuses_usage(self, error: ChatError) -> bool:
        """An older server rejecting `stream_options`: ask without it from now on."""
        if not self._usage_option or error.outcome is not Outcome.BAD_REQUEST:
            return False
        if "stream_options" not in error.detail and "include_usage" not in error.detail:
            return False
        log.warning("the endpoint refuses stream_options; token usage will not be reported")
        self._usage_option = False
        return True

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
