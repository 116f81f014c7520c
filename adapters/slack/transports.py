"""How Slack reaches the app: Socket Mode (outbound websocket) or HTTP (signed posts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

EVENTS_PATH = "/slack/events"
_FORM = "application/x-www-form-urlencoded"


Ready = Callable[[str], None]


class Transport(Protocol):
    async def serve(self, ready: Ready) -> None:
        """Receive requests until cancelled; calls `ready(address)` once listening."""


class FormSafeRequest(AsyncBoltRequest):
    """bolt treats any form body containing the text "payload" as an interactivity payload, so
    `/ask what is a payload?` would reach no listener. Decide by the field name instead.

    (Only the HTTP path needs this; we use no lazy listeners, whose request copies would
    re-parse the body the old way.)
    """

    def __init__(self, *, body: str, query: str, headers: dict[str, Any]) -> None:
        super().__init__(body=body, query=query, headers=headers)
        if self.content_type == _FORM:
            fields = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in fields:
                self.body = fields
                self.context = build_async_context(AsyncBoltContext({}), fields)


class HttpTransport:
    """Events, commands and interactivity at `/slack/events`; bolt checks signatures (401)."""

    def __init__(self, app: AsyncApp, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port

    async def _handle(self, request: web.Request) -> web.Response:
        bolt_request = FormSafeRequest(
            body=await request.text(), query=request.query_string, headers=dict(request.headers)
        )
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def serve(self, ready: Ready) -> None:
        web_app = web.Application()
        web_app.router.add_post(EVENTS_PATH, self._handle)
        runner = web.AppRunner(web_app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            host, port = runner.addresses[0][:2]
            ready(f"http://{host}:{port}{EVENTS_PATH}")
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


class SocketModeTransport:
    def __init__(self, app: AsyncApp, app_token: str) -> None:
        self.handler = AsyncSocketModeHandler(app, app_token=app_token)

    async def serve(self, ready: Ready) -> None:
        # The handler reconnects by itself (disconnect messages, dropped sockets).
        await self.handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            ready("socket-mode")
            await asyncio.Event().wait()
        finally:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
