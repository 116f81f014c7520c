"""Errors of calls to the chat API, sorted by cause (each server words them its own way)."""

from __future__ import annotations

import openai

from bot.messages import Outcome
from bot.overflow import Overflow, recognise


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


class StreamCut(ChatError):
    """The stream broke off after it began: the connection dropped, or it ended without a
    finish reason. What arrived is not a complete answer."""

    def __init__(self, detail: str) -> None:
        super().__init__(Outcome.INTERRUPTED, detail)


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
