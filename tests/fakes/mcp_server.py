"""Small MCP servers built with the official SDK, for tests.

Run as a script it serves over stdio (`python tests/fakes/mcp_server.py [--hang-on-start]`),
as Parley starts real servers; `serve_http()` runs the same tools over streamable HTTP on
127.0.0.1 in the test's own event loop and records each request's headers.

Tools: `echo` (text back), `add` (structured result), `shout` (a tool error), `big` (long
output), `slow` (sleeps), `die` (the process exits mid-call), `env` (a variable), `pid` (the
process id).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str = "fake") -> MCPServer:
    server: MCPServer = MCPServer(name, log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Say `text` back."""
        return f"echo: {text}"

    @server.tool()
    def add(a: int, b: int) -> dict[str, int]:
        """Add two numbers."""
        return {"sum": a + b}

    @server.tool()
    def shout(text: str) -> str:
        """Fails on purpose."""
        raise ToolError(f"cannot shout {text!r}")

    @server.tool()
    def big(words: int) -> str:
        """Return `words` numbered words."""
        return " ".join(f"word{n}" for n in range(words))

    @server.tool()
    async def slow(seconds: float) -> str:
        """Answer after `seconds`."""
        await asyncio.sleep(seconds)
        return "finally"

    @server.tool()
    def die() -> str:
        """Exit the server process in the middle of the call."""
        print("fake server: dying now", file=sys.stderr, flush=True)
        os._exit(3)

    @server.tool()
    def env(name: str) -> str:
        """An environment variable of the server process."""
        return os.environ.get(name, "(unset)")

    @server.tool()
    def pid() -> str:
        """The server's process id."""
        return str(os.getpid())

    return server


@dataclass
class HttpMcp:
    url: str = ""
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def serve_http(name: str = "fake") -> AsyncIterator[HttpMcp]:
    """The tools over streamable HTTP at `url` (…/mcp) until the block ends."""
    app = build(name).streamable_http_app()
    seen = HttpMcp()

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await app(scope, receive, send)

    server = uvicorn.Server(
        uvicorn.Config(recording, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    seen.url = f"http://127.0.0.1:{port}/mcp"
    try:
        yield seen
    finally:
        server.should_exit = True
        await task


def stdio_command(*flags: str) -> dict[str, Any]:
    """The PARLEY_MCP_CONFIG entry that starts this file as a stdio server."""
    return {"command": sys.executable, "args": [os.path.abspath(__file__), *flags]}


if __name__ == "__main__":
    if "--hang-on-start" in sys.argv:  # a server that never answers the handshake
        import time

        time.sleep(3600)
    build().run()
