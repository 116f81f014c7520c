"""The MCP servers of PARLEY_MCP_CONFIG as a source of tools for the core.

Servers are started at start-up, all at once (each within PARLEY_TOOL_TIMEOUT), so the first
message already has their tools; one that fails is retried in the background and its tools are
offered once it answers. They are stopped when Parley stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import mcp_types as types

from bot.logs import Redactor
from bot.mcp.config import McpConfigError, load_mcp_config
from bot.mcp.server import McpServer, ServerUnavailable
from bot.mcp.tool import McpTool, function_names
from bot.settings import ConfigError, Settings
from bot.texts import say
from bot.tools import Tool
from memory.tokens import TokenCounter


class McpToolbox:
    """Offers each server's tools; an admin_only server's only on admins' messages."""

    def __init__(self, servers: list[McpServer], counter: TokenCounter, room: int) -> None:
        self.servers = servers
        self.counter = counter
        self.room = room
        self._made: dict[str, tuple[tuple[types.Tool, ...], list[McpTool]]] = {}

    def tools_for(self, admin: bool) -> list[Tool]:
        found: list[Tool] = []
        for server in self._visible(admin):
            found += self._tools(server)
        return found

    def status(self, admin: bool) -> list[str]:
        """Lines about servers not running now (for `/tools`)."""
        return [
            say(
                "tools.server_down",
                server=server.name,
                problem=server.problem or say("tools.starting"),
            )
            for server in self._visible(admin)
            if not server.running
        ]

    def _visible(self, admin: bool) -> list[McpServer]:
        return [server for server in self.servers if admin or not server.config.admin_only]

    def _tools(self, server: McpServer) -> list[McpTool]:
        listing = server.tools
        made = self._made.get(server.name)
        if made is None or made[0] is not listing:
            names = function_names(server.name, [tool.name for tool in listing])
            tools = [
                McpTool(server, tool, names[tool.name], self.counter, self.room) for tool in listing
            ]
            made = self._made[server.name] = (listing, tools)
        return made[1]


async def _start(server: McpServer) -> None:
    with contextlib.suppress(ServerUnavailable):  # logged by the server; retried later
        await server.connect()


@asynccontextmanager
async def open_mcp(
    path: Path, settings: Settings, counter: TokenCounter
) -> AsyncIterator[McpToolbox]:
    """The servers of the MCP config at `path`, started; stopped on exit."""
    try:
        config = await asyncio.to_thread(load_mcp_config, path)
    except McpConfigError as exc:
        raise ConfigError(str(exc)) from exc
    redact = Redactor(config.secrets())
    servers = [
        McpServer(name, server, settings.tool_timeout, redact)
        for name, server in config.servers.items()
    ]
    try:
        await asyncio.gather(*(_start(server) for server in servers))
        yield McpToolbox(servers, counter, settings.tool_tokens)
    finally:
        await asyncio.gather(*(server.stop() for server in servers))
