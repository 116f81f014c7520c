"""The model's own tokenizer, where one is at hand: a local file or encoding
(PARLEY_TOKENIZER), or the server's `/tokenize` (llama-server, vLLM, llama-cpp-python).

With one, a prompt is counted exactly before it is sent; without, the calibration learnt from
the server's usage reports scales the budget.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from memory.tokens import BUNDLED_ENCODINGS, encoding_named

log = logging.getLogger(__name__)

_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Small texts are tokenized on the event loop; longer ones in a worker thread.
_OFFLOAD_CHARS = 20_000


class ModelTokenizer(Protocol):
    source: str  # shown by `parley doctor`

    async def count(self, text: str) -> int | None:
        """The model's token count of `text`; None when it cannot be had right now."""

    async def close(self) -> None: ...


class LocalTokenizer:
    """A `tokenizer.json` (Hugging Face `tokenizers`) or a bundled tiktoken encoding."""

    def __init__(self, spec: str) -> None:
        self.source = spec
        self._encoding = encoding_named(spec) if spec in BUNDLED_ENCODINGS else None
        self._tokenizer = None
        if self._encoding is None:
            import tokenizers  # only with PARLEY_TOKENIZER set to a file

            self._tokenizer = tokenizers.Tokenizer.from_file(str(Path(spec)))

    def _count(self, text: str) -> int:
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        assert self._tokenizer is not None
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    async def count(self, text: str) -> int | None:
        if len(text) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(self._count, text)
        return self._count(text)

    async def close(self) -> None:
        return None


# (name, path under the server's root, request body for `text`, how to read the answer)
_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("llama-server", "/tokenize", "content"),
    ("vLLM", "/tokenize", "prompt"),
    ("llama-cpp-python", "/extras/tokenize/count", "input"),
)


def _read_count(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("count"), int):
        return int(body["count"])
    if isinstance(body.get("tokens"), list):
        return len(body["tokens"])
    return None


def server_root(base_url: str) -> str:
    """`http://host:8080/v1` → `http://host:8080`: tokenize routes are not under /v1."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class ServerTokenizer:
    """The chat server's own tokenize route."""

    def __init__(self, session: aiohttp.ClientSession, url: str, field: str, model: str) -> None:
        self._session = session
        self._url = url
        self._field = field
        self._model = model
        self.source = url
        self._warned = False

    async def count(self, text: str) -> int | None:
        body = {self._field: text, "model": self._model, "add_special_tokens": False}
        try:
            async with self._session.post(self._url, json=body) as response:
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
                return _read_count(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.log(
                logging.DEBUG if self._warned else logging.WARNING,
                "counting with %s failed (%s); budgets use the calibration meanwhile",
                self._url,
                str(exc) or type(exc).__name__,
            )
            self._warned = True
            return None

    async def close(self) -> None:
        await self._session.close()


async def find_server_tokenizer(base_url: str, model: str) -> ServerTokenizer | None:
    """The first tokenize route the server answers (sensibly) on, or None."""
    session = aiohttp.ClientSession(timeout=_TIMEOUT)
    root = server_root(base_url)
    for name, path, field in _ROUTES:
        body = {field: "Hello, 안녕하세요", "model": model}
        try:
            async with session.post(root + path, json=body) as response:
                found = response.status == 200 and _read_count(
                    await response.json(content_type=None)
                )
        except (aiohttp.ClientError, TimeoutError, ValueError):
            found = None
        if found:
            log.info("counting tokens with the server's tokenizer (%s, %s)", name, root + path)
            return ServerTokenizer(session, root + path, field, model)
    await session.close()
    return None


async def open_tokenizer(
    spec: str | None, base_url: str, model: str, native: bool
) -> ModelTokenizer | None:
    """PARLEY_TOKENIZER, else the server's (not for models tiktoken counts exactly)."""
    if spec:
        return await asyncio.to_thread(LocalTokenizer, spec)
    if native:
        return None
    return await find_server_tokenizer(base_url, model)
