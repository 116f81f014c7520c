"""Context windows of well-known models, for servers that do not report theirs."""

from __future__ import annotations

# Longest matching prefix wins, so "gpt-4o-mini-2024-07-18" finds "gpt-4o-mini".
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "chatgpt-4o": 128_000,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama3": 8_192,
    "mistral": 32_768,
    "mixtral": 32_768,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "gemma2": 8_192,
    "gemma3": 131_072,
    "phi3": 4_096,
    "phi4": 16_384,
    "deepseek-r1": 131_072,
}

# Reasoning models take `max_completion_tokens` instead of `max_tokens`.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def _base_name(model: str) -> str:
    # "meta-llama/llama3.1:8b" → "llama3.1:8b"; Ollama tags follow a colon.
    return model.lower().rsplit("/", 1)[-1]


def known_window(model: str) -> int | None:
    """The model's window from the table, or None for a model not in it."""
    name = _base_name(model)
    matches = [prefix for prefix in CONTEXT_WINDOWS if name.startswith(prefix)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else None


def is_reasoning_model(model: str) -> bool:
    return _base_name(model).startswith(_REASONING_PREFIXES)
