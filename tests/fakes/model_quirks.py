"""What real local servers do differently from OpenAI, for the fake model server: a model
tokenizer unlike tiktoken, and each server's own words for a prompt longer than its window."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from memory.tokens import TokenCounter

_TIKTOKEN = TokenCounter("gpt-4o-mini")


def hangul_heavy(text: str) -> int:
    """A model tokenizer unlike tiktoken: every Hangul syllable costs 1.75 tokens more (Korean
    ~3.7x tiktoken's count, as SmolLM2's tokenizer measured), everything else 1.1x."""
    base = _TIKTOKEN.count(text)
    hangul = len(re.findall(r"[\uac00-\ud7af]", text))
    return base + base // 10 + (7 * hangul) // 4


# ChatML wraps every message in 5 tokens.
MODEL_TOKENS_PER_MESSAGE = 5


def model_prompt_tokens(
    messages: list[dict[str, Any]], count: Callable[[str], int], tools: Any = None
) -> int:
    """A prompt's tokens in a model tokenizer's count with a ChatML-like template."""
    total = 3 + (count(json.dumps(tools)) if tools else 0)
    for message in messages:
        content = message.get("content") or ""
        total += MODEL_TOKENS_PER_MESSAGE + count(
            content if isinstance(content, str) else json.dumps(content)
        )
        if message.get("tool_calls"):
            total += count(json.dumps(message["tool_calls"]))
    return total


def overflow_error(server: str, used: int, limit: int, window: int) -> web.Response:
    """Each server's own words (and shape) for a prompt longer than its window."""
    if server == "llama-server":
        message = (
            f"request ({used} tokens) exceeds the available context size ({window} tokens), "
            "try increasing it"
        )
        error = {"code": 400, "type": "exceed_context_size_error", "message": message}
        return web.json_response({"error": error}, status=400)
    if server == "llama-cpp-python":
        message = f"Requested tokens ({used}) exceed context window of {window}"
        return _openai_error(400, message, "context_length_exceeded")
    if server == "vllm":
        message = (
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{used + limit} tokens ({used} in the messages, {limit} in the completion). "
            "Please reduce the length of the messages or completion."
        )
        body = {"object": "error", "message": message, "type": "BadRequestError", "code": 400}
        return web.json_response(body, status=400)
    if server == "ollama":
        return web.json_response(
            {"error": f"prompt too long; exceeded max context length by {used - window} tokens"},
            status=500,
        )
    if server == "lmstudio":
        message = (
            f"Trying to keep the first {used} tokens when context the overflows. However, the "
            f"model is loaded with context length of only {window} tokens, which is not enough."
        )
        return web.json_response({"error": message}, status=400)
    message = (
        f"This model's maximum context length is {window} tokens. "
        f"However, you requested {used + limit} tokens."
    )
    return _openai_error(400, message, "context_length_exceeded")


class ServerQuirks:
    """The routes of local servers besides the OpenAI API (FakeModel's attributes)."""

    server: str
    report_window: bool
    context_window: int | None
    tokenizer: Callable[[str], int] | None
    tokenize_route: bool
    tokenize_requests: int

    def _window_fields(self) -> dict[str, Any]:
        if not self.report_window or self.context_window is None:
            return {}
        if self.server == "vllm":
            return {"max_model_len": self.context_window}
        if self.server == "llama-server":
            return {"meta": {"n_ctx": self.context_window, "n_ctx_train": 8192}}
        return {}

    async def _show(self, request: web.Request) -> web.Response:
        """Ollama's model info."""
        if self.server != "ollama" or not self.report_window:
            return web.json_response({"error": "not found"}, status=404)
        body = await request.json()
        return web.json_response(
            {
                "model": body.get("model"),
                "parameters": f"stop <|im_end|>\nnum_ctx {self.context_window}",
                "model_info": {"llama.context_length": 131072},
            }
        )

    async def _lmstudio_model(self, request: web.Request) -> web.Response:
        """LM Studio's REST API: the loaded model's context length."""
        if self.server != "lmstudio" or not self.report_window:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(
            {
                "id": request.match_info["model"],
                "state": "loaded",
                "max_context_length": 32768,
                "loaded_context_length": self.context_window,
            }
        )

    async def _tokenize(self, request: web.Request) -> web.Response:
        """llama-server's tokenizer route: {"content": …} → {"tokens": […]}."""
        if not self.tokenize_route or self.tokenizer is None:
            return web.json_response({"error": "not found"}, status=404)
        body = await request.json()
        if "content" not in body:
            return web.json_response({"error": "content missing"}, status=400)
        self.tokenize_requests += 1
        return web.json_response({"tokens": list(range(self.tokenizer(body["content"])))})


def _openai_error(status: int, message: str, code: str) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return web.json_response({"error": error}, status=status)
