"""How Slack reaches the app: Socket Mode (outbound websocket) or HTTP (signed posts)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
_FORM = "application/x-www-form-urlencoded"
# Slack's replay window: a signed request older (or newer) than this is refused.
_MAX_AGE = 300
# Event fields bolt and the listeners read as text; any other type is a malformed request.
_TEXT_FIELDS = ("type", "subtype", "user", "channel", "channel_type", "text", "ts", "thread_ts")


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


def signature_problem(secret: str, headers: Mapping[str, str], raw: bytes) -> str | None:
    """Why a request is not Slack's (None if it is): checked on the raw bytes, before any
    parsing, so a forged or replayed request costs nothing and its body is never logged."""
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "missing or malformed timestamp"
    if abs(time.time() - int(stamp)) > _MAX_AGE:
        return "stale timestamp"
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
    expected = "v0=" + digest.hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-Slack-Signature", "")):
        return "bad signature"
    return None


def shape_problem(body: str, content_type: str) -> str | None:
    """Why a signed body cannot be an event, command or interaction (None if it can)."""
    if content_type == _FORM:
        return None  # form fields are always strings; interactivity payloads are bolt's to read
    try:
        parsed = json.loads(body)
    except ValueError:
        return "malformed JSON"
    if not isinstance(parsed, dict):
        return "JSON body is not an object"
    event = parsed.get("event", {})
    if not isinstance(event, dict):
        return "event is not an object"
    fields = [parsed.get("type"), *(event.get(name) for name in _TEXT_FIELDS)]
    if any(value is not None and not isinstance(value, str) for value in fields):
        return "a field has the wrong type"
    files = event.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return "files is not a list of objects"
    return None


class HttpTransport:
    """Events, commands and interactivity at `/slack/events`: the signature is checked (401)
    and the body's shape (400) before bolt reads it; bolt checks the signature again."""

    def __init__(self, app: AsyncApp, host: str, port: int, signing_secret: str) -> None:
        self.app, self.host, self.port = app, host, port
        self.signing_secret = signing_secret

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        problem = signature_problem(self.signing_secret, request.headers, raw)
        if problem is not None:
            log.warning(
                "refused a request to the Slack endpoint from %s: %s", request.remote, problem
            )
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            problem = "body is not UTF-8"
        else:
            problem = shape_problem(body, request.content_type)
        if problem is not None:
            log.warning("refused a signed but malformed Slack request: %s", problem)
            return web.json_response({"error": problem}, status=400)
        bolt_request = FormSafeRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
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
