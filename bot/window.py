"""Which context window to budget for, and where that number came from.

The server knows best: llama-server reports `meta.n_ctx` in `/v1/models` (and `n_ctx` in
`/props`), vLLM `max_model_len`, Ollama the model's `num_ctx` in `/api/show`, LM Studio
`loaded_context_length` in `/api/v0/models/<model>`. Otherwise the known-models table, else a
small default. PARLEY_CONTEXT_TOKENS overrides all of them (and `parley doctor` warns when it
exceeds what the server reports).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.model_limits import known_window
from bot.model_tokenizer import server_root
from bot.settings import Settings
from bot.texts import say

log = logging.getLogger(__name__)

# llama-cpp-python's default n_ctx: larger windows are not to be assumed of an unknown model.
UNKNOWN_MODEL_WINDOW = 2_048
# Ollama runs a model with this window unless its num_ctx says otherwise.
OLLAMA_DEFAULT_NUM_CTX = 4_096
_TIMEOUT = aiohttp.ClientTimeout(total=5)


@dataclass(frozen=True)
class Window:
    tokens: int
    source: str  # for people: where `tokens` came from
    reported: int | None = None  # what the server says, when it says


async def _get(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    try:
        async with session.request(method, url, **kw) as response:
            if response.status != 200:
                return None
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


def _from_models(body: Any, model: str) -> tuple[int, str] | None:
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return None
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == model), None)
    if entry is None and len(entries) == 1 and isinstance(entries[0], dict):
        entry = entries[0]  # llama-server lists its one model under its file name
    if entry is None:
        return None
    meta = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
    for value, where in (
        (meta.get("n_ctx"), "llama.cpp /v1/models meta.n_ctx"),
        (entry.get("max_model_len"), "vLLM /v1/models max_model_len"),
    ):
        if isinstance(value, int) and value > 0:
            return value, where
    return None


def _from_props(body: Any) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return None
    settings = body.get("default_generation_settings")
    value = settings.get("n_ctx") if isinstance(settings, dict) else body.get("n_ctx")
    return (value, "llama.cpp /props n_ctx") if isinstance(value, int) and value > 0 else None


def _from_lmstudio(body: Any) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return None
    for key in ("loaded_context_length", "max_context_length"):
        if isinstance(body.get(key), int) and body[key] > 0:
            return body[key], f"LM Studio {key}"
    return None


def _from_ollama(body: Any) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return None
    found = re.search(r"^num_ctx\s+(\d+)", str(body.get("parameters") or ""), re.MULTILINE)
    if found:
        return int(found.group(1)), "Ollama num_ctx"
    info = body.get("model_info")
    trained = [
        v for k, v in (info or {}).items() if k.endswith(".context_length") and isinstance(v, int)
    ]
    if trained:
        return min(trained[0], OLLAMA_DEFAULT_NUM_CTX), "Ollama default num_ctx"
    return None


async def server_window(base_url: str, model: str) -> tuple[int, str] | None:
    """The window the server reports for `model`, and where it said so; None if it does not."""
    root = server_root(base_url)
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        found = _from_models(await _get(session, "GET", base_url.rstrip("/") + "/models"), model)
        if found is None:
            found = _from_props(await _get(session, "GET", root + "/props"))
        if found is None:
            body = await _get(session, "POST", root + "/api/show", json={"model": model})
            found = _from_ollama(body)
        if found is None:
            found = _from_lmstudio(await _get(session, "GET", f"{root}/api/v0/models/{model}"))
    return found


async def discover_window(settings: Settings) -> Window:
    reported = None
    if not settings.uses_default_endpoint:  # OpenAI itself reports no window
        reported = await server_window(settings.openai_base_url, settings.model)
    if settings.context_tokens:
        return Window(
            settings.context_tokens,
            say("window.setting"),
            reported[0] if reported else None,
        )
    if reported:
        return Window(reported[0], say("window.server", where=reported[1]), reported[0])
    known = known_window(settings.model)
    if known:
        return Window(known, say("window.table"))
    return Window(UNKNOWN_MODEL_WINDOW, say("window.default"))
