"""Recognising "the prompt is longer than the context window" in the words of each server.

Every server says it differently, and some say it with a status other than 400. What the
message tells (the server's own count of the prompt, its window) is kept: the count corrects
the calibration, the window corrects a guessed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lower-cased fragments, one server or more each.
_PHRASES = (
    "context_length_exceeded",  # OpenAI, Azure (the error code)
    "maximum context length",  # OpenAI, Azure, vLLM
    "exceed_context_size_error",  # llama-server (the error type)
    "exceeds the available context size",  # llama-server
    "exceed context window",  # llama-cpp-python: "Requested tokens (N) exceed context window of M"
    "longer than the maximum model length",  # vLLM: the decoder prompt is longer than …
    "max_model_len",  # vLLM
    "exceeded max context length",  # Ollama
    "input length exceeds",  # Ollama
    "context length of only",  # LM Studio: "…loaded with context length of only M tokens"
    "when context the overflows",  # LM Studio (sic)
    "context overflow",  # LM Studio
    "context length exceeded",
    "context window exceeded",
    "prompt is too long",
    "too many tokens",
    "context length",
)

# The server's count of the prompt alone (not prompt + reply).
_PROMPT_COUNT = (
    r"(\d+) in the messages",  # OpenAI, vLLM: "(X in the messages, Y in the completion)"
    r"request has (\d+) input tokens",  # vLLM, newer
    r"request \((\d+) tokens\)",  # llama-server
    r"requested tokens \((\d+)\)",  # llama-cpp-python
    r"prompt \(length (\d+)\)",  # vLLM, decoder prompt
    r"keep the first (\d+) tokens",  # LM Studio
)
_WINDOW = (
    r"maximum context length is (\d+)",
    r"available context size \((\d+) tokens\)",
    r"context window of (\d+)",
    r"maximum model length of (\d+)",
    r"context length of only (\d+)",
)


@dataclass(frozen=True)
class Overflow:
    """What an overflow error said, as far as it said it."""

    prompt_tokens: int | None = None
    window: int | None = None


def _first(patterns: tuple[str, ...], text: str) -> int | None:
    for pattern in patterns:
        found = re.search(pattern, text)
        if found:
            return int(found.group(1))
    return None


def recognise(status: int, code: str | None, message: str) -> Overflow | None:
    """An Overflow if this error is a context-window overflow, else None."""
    if status in (401, 403, 404, 429):
        return None
    text = f"{code or ''} {message}".lower()
    if not any(phrase in text for phrase in _PHRASES):
        return None
    return Overflow(_first(_PROMPT_COUNT, text), _first(_WINDOW, text))
