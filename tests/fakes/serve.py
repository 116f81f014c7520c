"""Serve a fake's aiohttp app on a free 127.0.0.1 port (every fake starts this way)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application, **runner_options: Any) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port. `runner_options` go to AppRunner."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
