"""`parley doctor` for MCP: start each configured server, list its tools, stop it."""

from __future__ import annotations

import asyncio

from bot.checks import Check, Probe
from bot.logs import Redactor
from bot.mcp.config import McpConfigError, load_mcp_config
from bot.mcp.server import McpServer, ServerUnavailable
from bot.texts import say

_SHOWN_TOOLS = 12


async def _check(server: McpServer) -> Check:
    name = f"MCP {server.name}"
    try:
        await server.connect()
    except ServerUnavailable as exc:
        return Check(name, False, say("doctor.mcp.failed", problem=exc), say("doctor.mcp.fix"))
    finally:
        await server.stop()
    names = [tool.name for tool in server.tools]
    shown = ", ".join(names[:_SHOWN_TOOLS]) + (" …" if len(names) > _SHOWN_TOOLS else "")
    return Check(name, True, say("doctor.mcp.ok", count=len(names), tools=shown or "-"))


async def check_mcp_servers(probe: Probe) -> list[Check]:
    path = probe.settings.mcp_config
    if path is None:
        return []
    try:
        config = await asyncio.to_thread(load_mcp_config, path)
    except McpConfigError as exc:
        return [Check("MCP", False, str(exc), say("doctor.config.fix"))]
    redact = Redactor(config.secrets())
    timeout = probe.settings.tool_timeout
    servers = [McpServer(name, server, timeout, redact) for name, server in config.servers.items()]
    return list(await asyncio.gather(*(_check(server) for server in servers)))
