"""An instant OpenAI-compatible chat endpoint for the benchmarks, run as its own process.

    python -m bench.fake        # prints the port, serves until killed

It answers every chat request at once with a short SSE stream, and notes when each request
carrying a `[bench N]` marker arrived (`time.monotonic()`, which on Linux is one clock for every
process), so the bench measures from a message entering the core to its request arriving here.
`GET /arrivals` returns and forgets those times. Running in its own process keeps its CPU off
the event loop being measured.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

_MARKER = re.compile(rb"\[bench (\d+)\]")


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


_STREAM = (
    _chunk({"role": "assistant", "content": "Noted, "})
    + _chunk({"content": "thanks."})
    + _chunk({}, "stop")
    + b"data: [DONE]\n\n"
)


class InstantModel:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}

    async def completions(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.monotonic()
        # The last marker is the message being answered (history may hold older ones). Only its
        # first request counts: a later summary of the history ends with an older message's
        # marker, and used to overwrite that message's arrival (the p99s of seconds).
        markers = _MARKER.findall(body)
        if markers:
            self.arrivals.setdefault(int(markers[-1]), arrived)
        return web.Response(body=_STREAM, content_type="text/event-stream")

    async def take_arrivals(self, _request: web.Request) -> web.Response:
        arrivals, self.arrivals = self.arrivals, {}
        return web.json_response({str(k): v for k, v in arrivals.items()})


async def _serve() -> None:
    model = InstantModel()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", model.completions)
    app.router.add_get("/arrivals", model.take_arrivals)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


@contextmanager
def instant_model() -> Iterator[str]:
    """Start the fake in a child process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    asyncio.run(_serve())
