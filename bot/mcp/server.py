"""One configured MCP server: started once and reused, restarted when it dies, stopped at exit.

Each connection lives in its own task (the SDK's transports are anyio contexts, entered and left
in one task); calls from replies go through it. A server that fails to start or dies is started
again in the background after a growing pause (1 s, 2 s, 4 s … 5 min), and the tools it listed
before stay offered meanwhile: a call made while it is down fails fast and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from pydantic import ValidationError

from bot.logs import Redactor
from bot.mcp.config import HttpServer, ServerConfig
from bot.mcp.stderr import stderr_to_log
from bot.mcp.streams import WatchedReads

log = logging.getLogger(__name__)

_CLIENT = types.Implementation(name="parley", version="1")
_BACKOFF_MAX = 300.0
_STOP_TIMEOUT = 10.0
_START_MIN = 15.0
_LIST_PAGES = 20
# What a failing server or transport raises through the SDK (anyio wraps some in groups).
FAILURES: tuple[type[Exception], ...] = (
    MCPError,
    OSError,
    TimeoutError,
    httpx2.HTTPError,
    ValidationError,
    RuntimeError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ExceptionGroup,
)


class ServerUnavailable(Exception):
    """The server is not running (not started yet, failed to start, or restarting)."""


@dataclass
class _Live:
    client: Client
    ended: asyncio.Event  # set when the connection must end: shutdown, or the server hung up


def describe(exc: BaseException) -> str:
    """One line about a failure, the innermost cause of an exception group first."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connection_lost(exc: BaseException) -> bool:
    """Whether a failed call means the server is gone (not a tool error or a slow tool)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(
        exc, OSError | httpx2.TransportError | anyio.BrokenResourceError | anyio.ClosedResourceError
    )


@asynccontextmanager
async def _http(config: HttpServer, seconds: float) -> AsyncIterator[Any]:
    # Reads wait longer: a server may hold a response stream open between events.
    http = create_mcp_http_client(
        headers=config.headers, timeout=httpx2.Timeout(seconds, read=max(seconds, 300.0))
    )
    async with http, streamable_http_client(config.url, http_client=http) as streams:
        yield streams


@asynccontextmanager
async def _watched(server: McpServer, ended: asyncio.Event) -> AsyncIterator[Any]:
    """The server's transport, with `ended` set when its read side closes (the server died)."""
    config = server.config
    async with AsyncExitStack() as stack:
        if isinstance(config, HttpServer):
            streams = await stack.enter_async_context(_http(config, server.timeout))
        else:
            errlog = await stack.enter_async_context(stderr_to_log(server.name, server.redact))
            parameters = StdioServerParameters(
                command=config.command, args=config.args, env=config.env or None, cwd=config.cwd
            )
            streams = await stack.enter_async_context(stdio_client(parameters, errlog=errlog))
        reads, writes = streams
        yield WatchedReads[SessionMessage | Exception](reads, ended), writes


async def list_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_LIST_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class McpServer:
    def __init__(
        self,
        name: str,
        config: ServerConfig,
        timeout: float,
        redact: Redactor,
        start_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.timeout = timeout  # for one call
        # Starting runs a process (often `npx` or `uvx`): never less than _START_MIN.
        self.start_timeout = start_timeout or max(timeout, _START_MIN)
        self.redact = redact
        self.tools: tuple[types.Tool, ...] = ()  # the last listing, allow-list applied
        self.problem: str | None = None  # why it is not running, when it is not
        self.starts = 0  # successful starts (a restart counts)
        self._live: _Live | None = None
        self._starting: asyncio.Future[_Live] | None = None
        self._owner: asyncio.Task[None] | None = None
        self._retry: asyncio.Task[None] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._live is not None and not self._live.ended.is_set()

    async def connect(self) -> Client:
        """The running connection; starts the server if it is not running (within the timeout)."""
        if self._live is not None and not self._live.ended.is_set():
            return self._live.client
        if self._stopping:
            raise ServerUnavailable("Parley is shutting down")
        if self._starting is None:
            if self._owner is not None and not self._owner.done():
                raise ServerUnavailable(f"{self.problem or 'it stopped'}; restarting shortly")
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise ServerUnavailable(f"{self.problem}; next start in {wait:.0f} s")
            self._starting = asyncio.get_running_loop().create_future()
            self._owner = asyncio.create_task(self._own(self._starting), name=f"mcp {self.name}")
        live = await asyncio.shield(self._starting)
        return live.client

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Run one tool call; raises ServerUnavailable or one of FAILURES."""
        client = await self.connect()
        try:
            async with asyncio.timeout(self.timeout + 1):
                result = await client.call_tool(tool, arguments, read_timeout_seconds=self.timeout)
        except FAILURES as exc:
            if isinstance(exc, MCPError) and exc.code == REQUEST_TIMEOUT:
                raise TimeoutError(f"no answer within {self.timeout:g} s") from exc
            if connection_lost(exc) and self._live is not None and self._live.client is client:
                log.warning("MCP server %s: connection lost (%s)", self.name, self._said(exc))
                self._live.ended.set()  # its owner ends the connection and restarts it
            raise
        self._failures = 0
        return result

    async def stop(self) -> None:
        """End the connection (the SDK closes a process's stdin, then terminates its tree)."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
        owner = self._owner
        if owner is None:
            return
        if self._live is not None:
            self._live.ended.set()
        else:
            owner.cancel()  # still starting: give up (the SDK still stops the process)
        done, _ = await asyncio.wait({owner}, timeout=_STOP_TIMEOUT)
        if not done:
            log.warning("MCP server %s did not stop in time; cancelling", self.name)
            owner.cancel()
            await asyncio.wait({owner})

    def _said(self, exc: BaseException) -> str:
        return self.redact(describe(exc))

    async def _own(self, started: asyncio.Future[_Live]) -> None:
        ended = asyncio.Event()
        live: _Live | None = None
        try:
            async with AsyncExitStack() as stack:
                async with asyncio.timeout(self.start_timeout):
                    client = await stack.enter_async_context(
                        Client(_watched(self, ended), client_info=_CLIENT)
                    )
                    listed = await list_tools(client)
                self._listed(listed)
                live = self._live = _Live(client, ended)
                self.problem, self.starts = None, self.starts + 1
                started.set_result(live)
                await ended.wait()
        except TimeoutError:
            self.problem = f"did not answer within {self.start_timeout:g} s"
        except FAILURES as exc:
            self.problem = self._said(exc)
        except Exception as exc:  # the supervisor's boundary: a surprise must not end retries
            log.exception("MCP server %s: unexpected failure", self.name)
            self.problem = self._said(exc)
        finally:
            self._live = None
            self._starting = None
            if not started.done():
                started.set_exception(ServerUnavailable(self.problem or "stopped"))
                started.exception()  # retrieved: a start nobody waited for is not an error
        if not self._stopping:
            self._schedule_retry(ran=live is not None)

    def _listed(self, listed: list[types.Tool]) -> None:
        allowed = self.config.tools
        self.tools = tuple(tool for tool in listed if allowed is None or tool.name in allowed)
        missing = set(allowed or ()) - {tool.name for tool in listed}
        if missing:
            log.warning(
                "MCP server %s has no tools named %s (allow-list in PARLEY_MCP_CONFIG)",
                self.name,
                ", ".join(sorted(missing)),
            )
        log.info("MCP server %s ready: %d tools offered", self.name, len(self.tools))

    def _schedule_retry(self, ran: bool) -> None:
        self._failures += 1
        pause = min(2.0 ** (self._failures - 1), _BACKOFF_MAX)
        self._retry_at = time.monotonic() + pause
        if ran:
            self.problem = "stopped unexpectedly"
            log.warning(
                "MCP server %s stopped unexpectedly; restarting in %.0f s", self.name, pause
            )
        else:
            log.warning(
                "MCP server %s failed to start (%s); retrying in %.0f s",
                self.name,
                self.problem,
                pause,
            )
        self._retry = asyncio.create_task(self._start_later(pause), name=f"mcp {self.name} retry")

    async def _start_later(self, pause: float) -> None:
        await asyncio.sleep(pause)
        self._retry_at = 0.0
        with contextlib.suppress(ServerUnavailable):
            await self.connect()
