"""A fake OpenAI-compatible chat API on 127.0.0.1, driven by the real `openai` client.

    async with FakeModel() as model:          # or the `fake_model` fixture
        model.script(Fail(429, retry_after=0.05), Reply("Hello!"))
        settings = Settings(openai_base_url=model.base_url, ...)
        ...
        assert model.requests[-1]["messages"][-1]["content"].endswith("hi")

Every request body is kept in `requests`. Scripted behaviours are used in order; when none are
left, `default` answers (by default: "echo: <last user message>"). With `context_window` set,
a prompt whose exact token count (plus max_tokens) exceeds it gets the real API's 400
`context_length_exceeded`, so tests prove prompts fit. `/v1/models` lists `models` (None: the
route answers 404, like servers without it); with `api_key` set, other keys get a 401.
`/v1/embeddings` answers with `bag_of_words` vectors (or `embedding_failure` when set); its
request bodies are kept in `embedding_requests`.

Quirks of real local servers, each off by default:
- `tokenizer`: the model's own count (e.g. `hangul_heavy`, counting Korean ~3.7x tiktoken);
  prompts are then measured with it plus ChatML's 5 tokens a message, usage reports it, and
  `tokenize_route` serves llama-server's `POST /tokenize` with it.
- `server`: whose overflow wording and behaviour to copy: "openai" (also Azure), "vllm",
  "llama-server" (prompt >= window → its 400; prompt + reply > window → reply cut with
  finish "length"), "llama-cpp-python" (streamed overflow → 200 with an empty body), "ollama",
  "lmstudio".
- `report_window`: the window in `/v1/models` (llama-server `meta.n_ctx`, vLLM
  `max_model_len`), Ollama's `/api/show` `num_ctx` or LM Studio's `/api/v0/models/<id>`.
- `per_token_embeddings`: `/v1/embeddings` returns a list of vectors (one per word) per input.
- `Drop()` closes the connection before a byte of the answer (the client cannot connect).
- Replies: `Reply(finish="length")` or `Reply(finish=None)` (a stream ending without a finish);
  `Reply(reasoning=…)` streams `reasoning_content` before the answer.
Streams asked for usage (`stream_options.include_usage`) end with a usage chunk: the exact
counts, or `usage` when set; `report_usage = False` plays an endpoint that gives none.
`/v1/moderations` flags inputs containing one of `flagged_words` (or fails with
`moderation_failure`). `max_in_flight` is the most chat requests handled at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter
from tests.fakes.model_quirks import ServerQuirks, model_prompt_tokens, overflow_error
from tests.fakes.serve import serve


@dataclass
class Reply:
    """Answer with `text`, streamed in `chunk`-character pieces when the client streams."""

    text: str
    chunk: int = 8
    delay: float = 0.0  # seconds before the first byte
    chunk_delay: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish: str | None = "stop"  # "length": cut at its token limit; None: no finish at all
    reasoning: str = ""  # sent as `reasoning_content` before the answer


@dataclass
class Fail:
    """Answer with an HTTP error in the API's JSON shape."""

    status: int
    message: str = "injected failure"
    code: str | None = None
    retry_after: float | None = None


@dataclass
class Hang:
    """Accept the request and say nothing for `seconds` (client timeouts)."""

    seconds: float


@dataclass
class BreakStream:
    """Stream `text`, then cut the connection without finishing."""

    text: str


@dataclass
class Drop:
    """Close the connection before answering at all (a server that crashed or restarted)."""


Behaviour = Reply | Fail | Hang | BreakStream | Drop


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """A tool call for `Reply(tool_calls=[...])`."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def echo(body: dict[str, Any]) -> Behaviour:
    last = body["messages"][-1]["content"]
    return Reply(f"echo: {last if isinstance(last, str) else json.dumps(last)}"[:200])


def prompt_tokens(
    messages: list[dict[str, Any]], counter: TokenCounter, tools: list[dict[str, Any]] | None = None
) -> int:
    """Tokens of a chat prompt, counted the way Parley budgets it (tool calls and tool
    definitions as their JSON text)."""
    total = TOKENS_PER_REPLY + (counter.count(json.dumps(tools)) if tools else 0)
    for message in messages:
        content = message.get("content") or ""
        total += TOKENS_PER_MESSAGE + counter.count(
            content if isinstance(content, str) else json.dumps(content)
        )
        if message.get("tool_calls"):
            total += counter.count(json.dumps(message["tool_calls"]))
    return total


# Words the fake embedding model treats as meaning the same.
SYNONYMS = {
    "puppy": "dog",
    "hound": "dog",
    "name": "called",
    "named": "called",
    "automobile": "car",
    "vehicle": "car",
}
EMBEDDING_SIZE = 512


def bag_of_words(text: str) -> list[float]:
    """A deterministic embedding: each word (synonyms merged) adds 1 to a hashed dimension, so
    texts sharing words or synonyms are similar and unrelated ones are nearly orthogonal."""
    vector = [0.0] * EMBEDDING_SIZE
    for word in re.findall(r"[^\W_]+", text.lower()):
        vector[zlib.crc32(SYNONYMS.get(word, word).encode()) % EMBEDDING_SIZE] += 1.0
    return vector


class FakeModel(ServerQuirks):
    def __init__(
        self,
        context_window: int | None = None,
        model: str = "gpt-4o-mini",
        models: tuple[str, ...] | None = ("gpt-4o-mini",),
        api_key: str | None = None,
    ) -> None:
        self.context_window = context_window
        self.models = models
        self.api_key = api_key
        self.counter = TokenCounter(model)
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.embedding_failure: Fail | None = None
        self.usage: tuple[int, int] | None = None  # (prompt, completion) reported in streams
        self.report_usage = True
        self.flagged_words: set[str] = set()
        self.moderation_failure: Fail | None = None
        self.moderation_requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.headers: list[dict[str, str]] = []
        self.default: Callable[[dict[str, Any]], Behaviour] = echo
        self.tokenizer: Callable[[str], int] | None = None
        self.server = "openai"
        self.report_window = False
        self.tokenize_route = False
        self.tokenize_requests = 0
        self.per_token_embeddings = False
        self._script: list[Behaviour] = []
        self._ids = itertools.count(1)
        self._stack = AsyncExitStack()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        self._script.extend(behaviours)

    async def __aenter__(self) -> FakeModel:
        app = web.Application(middlewares=[self._check_key])
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/tokenize", self._tokenize)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/api/v0/models/{model:.+}", self._lmstudio_model)
        app.router.add_post("/v1/moderations", self._moderations)
        self.port = await self._stack.enter_async_context(serve(app, shutdown_timeout=0.1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @web.middleware
    async def _check_key(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if (
            self.api_key is not None
            and request.headers.get("Authorization") != f"Bearer {self.api_key}"
        ):
            return _error(Fail(401, "Incorrect API key provided.", "invalid_api_key"))
        try:
            response: web.StreamResponse = await handler(request)
        except ConnectionResetError as exc:
            # The caller went away (a bot killed, or past its timeout) before the reply's
            # headers: nobody to answer. aiohttp logs a handler's error with its traceback,
            # and sends an HTTP error quietly when the connection is gone.
            raise web.HTTPServiceUnavailable() from exc
        return response

    async def _models(self, _request: web.Request) -> web.Response:
        if self.models is None:
            return _error(Fail(404, "Not found"))
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
                    | self._window_fields()
                    for name in self.models
                ],
            }
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.embedding_requests.append(body)
        if self.embedding_failure is not None:
            return _error(self.embedding_failure)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        return web.json_response(
            {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": index, "embedding": self._embed(text)}
                    for index, text in enumerate(texts)
                ],
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            }
        )

    def _embed(self, text: str) -> list[float] | list[list[float]]:
        if not self.per_token_embeddings:
            return bag_of_words(text)
        # llama-cpp-python without pooling: one vector per token, whose mean is the meaning.
        return [bag_of_words(word) for word in text.split()] or [bag_of_words("")]

    async def _moderations(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.moderation_requests.append(body)
        if self.moderation_failure is not None:
            return _error(self.moderation_failure)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        results = []
        for text in texts:
            flagged = any(word in text.casefold() for word in self.flagged_words)
            categories = {"harassment": flagged, "violence": False}
            results.append(
                {
                    "flagged": flagged,
                    "categories": categories,
                    "category_scores": {name: float(on) for name, on in categories.items()},
                }
            )
        return web.json_response(
            {
                "id": "modr-1",
                "model": body.get("model", "omni-moderation-latest"),
                "results": results,
            }
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._complete(request)
        finally:
            self.in_flight -= 1

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        overflow = self._overflow(body)
        if overflow is not None:
            if self.server == "llama-cpp-python" and body.get("stream"):
                # Its streamed overflow: 200, an event stream, and not one byte in it.
                response = await _sse(request)
                await response.write_eof()
                return response
            return overflow
        behaviour = self._script.pop(0) if self._script else self.default(body)
        if isinstance(behaviour, Fail):
            return _error(behaviour)
        if isinstance(behaviour, Hang):
            await asyncio.sleep(behaviour.seconds)
            return _error(Fail(504, "hung"))
        if isinstance(behaviour, BreakStream):
            return await self._break(request, behaviour)
        if isinstance(behaviour, Drop):
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        await asyncio.sleep(behaviour.delay)
        if body.get("stream"):
            return await self._stream(request, body, behaviour)
        return web.json_response(self._completion(body, behaviour))

    def prompt_size(self, body: dict[str, Any]) -> int:
        """The prompt's tokens as this server counts them."""
        if self.tokenizer is None:
            return prompt_tokens(body["messages"], self.counter, body.get("tools"))
        return model_prompt_tokens(body["messages"], self.tokenizer, body.get("tools"))

    def _overflow(self, body: dict[str, Any]) -> web.Response | None:
        if self.context_window is None:
            return None
        used = self.prompt_size(body)
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        window = self.context_window
        if self.server in ("llama-server", "llama-cpp-python", "ollama", "lmstudio"):
            limit = 0  # these shorten the reply instead (finish "length")
        if used + limit <= window:
            return None
        return overflow_error(self.server, used, limit, window)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: Reply
    ) -> web.StreamResponse:
        response = await _sse(request)
        chunk_id = f"chatcmpl-{next(self._ids)}"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        await _send(response, chunk({"role": "assistant", "content": ""}))
        for start in range(0, len(reply.reasoning), reply.chunk):
            thought = reply.reasoning[start : start + reply.chunk]
            await _send(response, chunk({"content": None, "reasoning_content": thought}))
        text, finish = self._cut(body, reply)
        for start in range(0, len(text), reply.chunk):
            await _send(response, chunk({"content": text[start : start + reply.chunk]}))
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        for index, call in enumerate(reply.tool_calls):
            # Like the real API: id and name first, then the arguments in pieces.
            arguments = call["function"]["arguments"]
            head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            await _send(response, chunk({"tool_calls": [{"index": index, **head}]}))
            for start in range(0, len(arguments), reply.chunk):
                piece = {"function": {"arguments": arguments[start : start + reply.chunk]}}
                await _send(response, chunk({"tool_calls": [{"index": index, **piece}]}))
        if finish is not None:
            await _send(response, chunk({}, "tool_calls" if reply.tool_calls else finish))
        if self.report_usage and (body.get("stream_options") or {}).get("include_usage"):
            usage = self._usage(body, text, reply)
            await _send(response, {**chunk({}), "choices": [], "usage": usage})
        if finish is not None:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _cut(self, body: dict[str, Any], reply: Reply) -> tuple[str, str | None]:
        """The reply as sent, and its finish: a server that shortens replies to what its
        window leaves cuts it (one token = one character here) with finish "length"."""
        if self.context_window is None or self.server == "openai":
            return reply.text, reply.finish
        left = self.context_window - self.prompt_size(body)
        limit = min(body.get("max_tokens") or left, left)
        if len(reply.text) > limit:
            return reply.text[: max(limit, 0)], "length"
        return reply.text, reply.finish

    def _usage(self, body: dict[str, Any], text: str, reply: Reply) -> dict[str, int]:
        calls = json.dumps(reply.tool_calls) if reply.tool_calls else ""
        prompt, completion = self.usage or (
            self.prompt_size(body),
            (self.tokenizer or self.counter.count)(text + calls),
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def _break(self, request: web.Request, behaviour: BreakStream) -> web.StreamResponse:
        response = await _sse(request)
        await _send(
            response,
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [
                    {"index": 0, "finish_reason": None, "delta": {"content": behaviour.text}}
                ],
            },
        )
        assert request.transport is not None
        request.transport.close()
        return response


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())


def _error(fail: Fail) -> web.Response:
    headers = {"Retry-After": str(fail.retry_after)} if fail.retry_after is not None else {}
    kind = "invalid_request_error" if fail.status < 500 else "server_error"
    return web.json_response(
        {"error": {"message": fail.message, "type": kind, "param": None, "code": fail.code}},
        status=fail.status,
        headers=headers,
    )
