"""A fake Slack on 127.0.0.1 that drives the real slack-bolt / slack_sdk stack offline.

It serves the Web API (``base_url``), ``response_url`` webhooks, file downloads and the
Socket Mode websocket, records everything the app does, and injects events over both
transports (signed HTTP posts or Socket Mode envelopes).

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(base_url=fake.base_url, token=fake.bot_token)
        app = AsyncApp(client=client, signing_secret=fake.signing_secret)
        ...  # register listeners, then serve app.web_app() with serve_aiohttp()
        async with serve_aiohttp(app.web_app()) as app_url:
            event = fake.app_mention_event("hello", channel=GENERAL)
            resp = await fake.post_signed(f"{app_url}/slack/events", event)
            assert resp.status == 200
            reply = await fake.wait_for(lambda: fake.last_message(GENERAL))
            assert reply.thread_ts == event["event"]["ts"]

        # Socket Mode: AsyncSocketModeHandler(app, app_token=fake.app_token) uses app.client
        # to call apps.connections.open, which points it at ws://127.0.0.1:PORT/link.
        ack = await fake.send_socket_event(fake.app_mention_event("hi"))

All ``at`` / ``posted_at`` times are ``time.monotonic()`` values; all waits are bounded.
"""

# Every wait in this test API takes a ``timeout=`` so tests read naturally and stay bounded.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlencode

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.serve import serve

Json = dict[str, Any]
T = TypeVar("T")

TEAM_ID = "T0FAKETEAM"
APP_ID = "A0FAKEAPP"
BOT_USER_ID = "U0PARLEY"
BOT_ID = "B0PARLEY"
GENERAL = "C0GENERAL"
RANDOM = "C0RANDOM"
PRIVATE = "G0PRIVATE"
ALICE = "U0ALICE"
BOB = "U0BOB"

OAUTH_SCOPES = (
    "app_mentions:read,channels:history,chat:write,commands,files:read,groups:history,im:history,"
    "users:read"
)
# Slack redirects unauthenticated file downloads to an HTML login page (with status 200).
LOGIN_PAGE = "<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
JSON_FORM_FIELDS = frozenset({"blocks", "attachments", "metadata"})


# --------------------------------------------------------------------------- recorded state


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_api(self, team_id: str) -> Json:
        profile = {"real_name": self.real_name, "display_name": self.name}
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "is_bot": self.is_bot,
            "deleted": False,
            "tz": "Europe/Berlin",
            "profile": profile,
        }


@dataclass
class Channel:
    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    user: str | None = None  # the other member of a DM

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` field of message events in this channel."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def to_api(self) -> Json:
        data: Json = {
            "id": self.id,
            "is_channel": not (self.is_im or self.is_private),
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_private": self.is_private or self.is_im,
            "is_member": True,
            "is_archived": False,
        }
        if self.is_im:
            data["user"] = self.user
        else:
            data["name"] = self.name
        return data


@dataclass
class Edit:
    """One ``chat.update`` applied to a message."""

    text: str
    blocks: list[Json] | None
    at: float


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str
    thread_ts: str | None = None
    blocks: list[Json] | None = None
    mrkdwn: bool | None = None
    bot_id: str | None = None
    ephemeral_to: str | None = None
    files: list[Json] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False
    posted_at: float = field(default_factory=time.monotonic)
    original_text: str = field(init=False)

    def __post_init__(self) -> None:
        self.original_text = self.text

    @property
    def texts(self) -> list[str]:
        """Every text this message has shown, oldest first."""
        return [self.original_text, *(edit.text for edit in self.edits)]

    @property
    def root_ts(self) -> str:
        """The ts of the thread this message belongs to (its own ts if top-level)."""
        return self.thread_ts or self.ts

    def to_api(self, team_id: str) -> Json:
        data: Json = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        data["team"] = team_id
        optional = {"thread_ts": self.thread_ts, "blocks": self.blocks, "bot_id": self.bot_id}
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.files:
            data["files"] = self.files
        if self.edits:
            data["edited"] = {"user": self.user, "ts": self.ts}
        return data


@dataclass
class Call:
    """One Web API request; ``error`` is the Slack error returned, if any."""

    method: str
    args: Json
    at: float
    error: str | None = None


@dataclass
class WebhookPost:
    hook_id: str
    body: Json
    at: float


@dataclass
class Ack:
    """A Socket Mode acknowledgement; ``elapsed`` is seconds since the envelope was sent."""

    envelope_id: str
    payload: Json | None
    elapsed: float
    connection: int


@dataclass
class SocketConnection:
    index: int
    ws: web.WebSocketResponse
    opened_at: float
    closed_at: float | None = None
    sent: list[Json] = field(default_factory=list)
    received: list[Json] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed


@dataclass
class SignedResponse:
    status: int
    text: str
    headers: dict[str, str]
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class _Fault:
    error: str
    status: int
    headers: dict[str, str]
    remaining: int


class _ApiError(Exception):
    def __init__(self, error: str, status: int = 200, headers: Mapping[str, str] | None = None):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = dict(headers or {})


# --------------------------------------------------------------------------- helpers


@asynccontextmanager
async def serve_aiohttp(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a random 127.0.0.1 port; yields its root URL (no trailing slash)."""
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def encode_body(
    payload: Mapping[str, Any], encoding: Literal["json", "form"] | None = None
) -> tuple[str, str]:
    """Encode a request body as Slack does; returns (body, content type).

    By default slash commands (``command``) and interactivity (``payload``) are form-encoded
    and everything else (Events API) is JSON.
    """
    if encoding is None:
        encoding = "form" if "command" in payload or "payload" in payload else "json"
    if encoding == "form":
        return urlencode({key: str(value) for key, value in payload.items()}), (
            "application/x-www-form-urlencoded"
        )
    return json.dumps(payload), "application/json"


async def post_signed(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str,
    encoding: Literal["json", "form"] | None = None,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> SignedResponse:
    """Sign ``payload`` like Slack does and POST it to ``url`` (an app's ``/slack/events``).

    ``timestamp`` overrides the signed time (e.g. ``time.time() - 600`` for a stale request);
    a wrong ``secret`` forges the signature; ``retry_num`` adds Slack's retry headers.
    """
    body, content_type = encode_body(payload, encoding)
    signed_at = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=signed_at, body=body)
    request_headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": signed_at,
        "X-Slack-Signature": signature or "",
    }
    if retry_num is not None:
        request_headers["X-Slack-Retry-Num"] = str(retry_num)
        request_headers["X-Slack-Retry-Reason"] = retry_reason
    request_headers.update(headers or {})
    started = time.perf_counter()
    async with (
        ClientSession(timeout=ClientTimeout(total=timeout)) as session,
        session.post(url, data=body.encode(), headers=request_headers) as resp,
    ):
        text = await resp.text()
        return SignedResponse(resp.status, text, dict(resp.headers), time.perf_counter() - started)


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true")


def _decode_field(key: str, value: Any) -> Any:
    # Form-encoded Web API calls carry blocks/attachments as JSON strings.
    if key in JSON_FORM_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _read_args(request: web.Request) -> Json:
    """Merge query string and body (JSON, form or multipart) into one argument dict."""
    args: Json = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    args[key] = {"filename": value.filename}
                elif isinstance(value, bytes):
                    args[key] = value.decode()
                else:
                    args[key] = value
    return {key: _decode_field(key, value) for key, value in args.items()}


def _bearer_token(request: web.Request, args: Json) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    token = args.pop("token", None)  # legacy clients send it as a parameter
    return str(token) if token is not None else None


# --------------------------------------------------------------------------- the fake


class FakeSlack:
    """A fake Slack workspace served on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-1-fake-bot-token",
        app_token: str = "xapp-1-fake-app-token",
        signing_secret: str = "fake-signing-secret",
        max_text_length: int = 4000,
        max_block_text_length: int = 3000,
        webhook_post_limit: int = 5,
    ) -> None:
        self.team_id, self.app_id = TEAM_ID, APP_ID
        self.bot_user_id, self.bot_id = BOT_USER_ID, BOT_ID
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.verification_token = "fake-verification-token"
        self.max_text_length = max_text_length
        self.max_block_text_length = max_block_text_length
        self.webhook_post_limit = webhook_post_limit  # Slack allows 5 posts per response_url
        self.latency: dict[str, float] = {}  # method -> seconds to wait before answering
        self.scopes = OAUTH_SCOPES  # the bot token's scopes (without files:read: no downloads)

        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, Json] = {}
        self.file_redirects: dict[str, str] = {}  # file id → where its download redirects
        self._file_bodies: dict[str, tuple[bytes, str]] = {}
        self.add_user(BOT_USER_ID, "parley", "Parley", is_bot=True)
        self.add_user(ALICE, "alice", "Alice Liddell")
        self.add_user(BOB, "bob", "Bob Builder")
        self.add_channel(GENERAL, "general")
        self.add_channel(RANDOM, "random")
        self.add_channel(PRIVATE, "secret-plans", is_private=True)

        self.calls: list[Call] = []
        self.unhandled: list[str] = []
        self.messages: defaultdict[str, list[Message]] = defaultdict(list)  # bot posts
        self.history: defaultdict[str, list[Message]] = defaultdict(list)  # everyone's posts
        self.ephemerals: list[Message] = []
        self.webhook_posts: list[WebhookPost] = []
        self.file_downloads: list[str] = []
        self.socket_connections: list[SocketConnection] = []
        self.acks: dict[str, Ack] = {}

        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._tickets: set[str] = set()
        self._pushed_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._root_url: str | None = None
        self._stack = AsyncExitStack()
        self._methods: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "bots.info": self._bots_info,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "files.info": self._files_info,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
        }

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        app = web.Application()
        app.add_routes(
            [
                web.route("*", "/api/{method}", self._handle_api),
                web.get("/link", self._handle_link),
                web.post("/webhook/{hook_id}", self._handle_webhook),
                web.get("/files/{file_id}/{name}", self._handle_download),
            ]
        )
        self._root_url = await self._stack.enter_async_context(serve_aiohttp(app))
        return self

    async def close(self) -> None:
        # Open websockets would otherwise keep the runner's shutdown waiting.
        for conn in self.socket_connections:
            if conn.open:
                await conn.ws.close()
        await self._stack.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        if self._root_url is None:
            raise RuntimeError("FakeSlack is not started")
        return self._root_url

    @property
    def base_url(self) -> str:
        """Web API base URL for ``AsyncWebClient(base_url=...)`` (it needs the trailing slash)."""
        return f"{self.root_url}/api/"

    # ----------------------------------------------------------------- workspace setup

    def add_user(self, user_id: str, name: str, real_name: str, *, is_bot: bool = False) -> User:
        user = User(user_id, name, real_name, is_bot)
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> Channel:
        channel = Channel(channel_id, name, is_private=is_private)
        self.channels[channel_id] = channel
        return channel

    def dm_channel(self, user_id: str) -> Channel:
        """The bot's DM channel with ``user_id`` (created on first use)."""
        channel_id = "D" + user_id.removeprefix("U")
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(channel_id, user_id, is_im=True, user=user_id)
        return self.channels[channel_id]

    def add_file(
        self,
        name: str,
        content: str | bytes,
        *,
        mimetype: str = "text/plain",
        user: str = ALICE,
    ) -> Json:
        """Register a shared file; returns its ``files.info`` object (pass it to message_event)."""
        file_id = f"F{next(self._ids):08d}"
        data = content.encode() if isinstance(content, str) else content
        url = f"{self.root_url}/files/{file_id}/{name}"
        info: Json = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "text",
            "size": len(data),
            "user": user,
            "mode": "hosted",
            "is_external": False,
            "created": int(time.time()),
            "url_private": url,
            "url_private_download": url,
        }
        self.files[file_id] = info
        self._file_bodies[file_id] = (data, mimetype)
        return info

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with Slack error ``error``.

        ``ratelimited`` answers HTTP 429 with ``Retry-After`` like Slack; other errors answer
        HTTP 200 with ``ok: false`` unless ``status`` says otherwise.
        """
        headers: dict[str, str] = {}
        if error == "ratelimited":
            headers["Retry-After"] = str(retry_after)
        default_status = 429 if error == "ratelimited" else 200
        fault = _Fault(error, status or default_status, headers, times)
        self._faults[method].append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults[method]
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    # ----------------------------------------------------------------- queries and waiting

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def all_messages(self) -> list[Message]:
        """All bot posts in all channels, in posting order."""
        return sorted(
            (msg for msgs in self.messages.values() for msg in msgs), key=lambda m: m.posted_at
        )

    def last_message(self, channel: str | None = None) -> Message | None:
        """The bot's latest post (in ``channel`` if given), or None."""
        msgs = self.messages[channel] if channel is not None else self.all_messages()
        return msgs[-1] if msgs else None

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Everyone's messages of one thread (parent first), as conversations.replies sees it."""
        return [m for m in self.history[channel] if m.root_ts == thread_ts and not m.deleted]

    def webhook_posts_for(self, response_url: str) -> list[WebhookPost]:
        hook_id = response_url.rstrip("/").rsplit("/", 1)[-1]
        return [post for post in self.webhook_posts if post.hook_id == hook_id]

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, *, what: str = ""
    ) -> T:
        """Wait until ``predicate()`` over recorded state is truthy; return its value.

        Re-evaluated whenever the fake records something, so it must only depend on state
        the fake records. Raises TimeoutError after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while not (result := predicate()):
                    await self._changed.wait()
                return result
        except TimeoutError:
            recent = [c.method + (f"!{c.error}" if c.error else "") for c in self.calls[-10:]]
            target = what or getattr(predicate, "__qualname__", repr(predicate))
            raise TimeoutError(
                f"FakeSlack.wait_for({target}) timed out after {timeout}s; last calls: {recent}"
            ) from None

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- event builders

    def app_mention_event(
        self,
        text: str,
        *,
        user: str = ALICE,
        channel: str = GENERAL,
        thread_ts: str | None = None,
    ) -> Json:
        """An Events API ``app_mention`` body; prefixes ``<@bot>`` unless ``text`` has it.

        The user's message is recorded in ``history`` so conversations.replies sees it.
        """
        mention = f"<@{self.bot_user_id}>"
        full_text = text if mention in text else f"{mention} {text}"
        event = self._user_message(full_text, user, channel, thread_ts, files=None)
        event["type"] = "app_mention"
        return self.event_callback(event)

    def message_event(
        self,
        text: str,
        *,
        user: str = ALICE,
        channel: str = GENERAL,
        thread_ts: str | None = None,
        files: list[Json] | None = None,
    ) -> Json:
        """An Events API ``message`` body (``channel_type`` follows the channel; DMs are ``im``).

        Files from ``add_file`` make it a ``file_share`` message.
        """
        event = self._user_message(text, user, channel, thread_ts, files=files)
        event["type"] = "message"
        event["channel_type"] = self.channels[channel].channel_type
        if files:
            event["subtype"] = "file_share"
        return self.event_callback(event)

    def dm_event(self, text: str, *, user: str = ALICE, thread_ts: str | None = None) -> Json:
        """A ``message`` event in the bot's DM with ``user`` (``channel_type: im``)."""
        channel = self.dm_channel(user).id
        return self.message_event(text, user=user, channel=channel, thread_ts=thread_ts)

    def event_callback(self, event: Json) -> Json:
        """Wrap an event in the ``event_callback`` envelope Slack posts (and Socket Mode sends)."""
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-fake-{uuid.uuid4().hex[:12]}",
        }

    def slash_command(
        self, command: str, text: str = "", *, user: str = ALICE, channel: str = GENERAL
    ) -> dict[str, str]:
        """A slash command's form fields; ``response_url`` points at this fake's /webhook."""
        hook_id = f"H{next(self._ids):08d}"
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": self.channels[channel].name,
            "user_id": user,
            "user_name": self.users[user].name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.root_url}/webhook/{hook_id}",
            "trigger_id": f"{next(self._ids)}.{int(time.time())}.{uuid.uuid4().hex}",
        }

    def _user_message(
        self,
        text: str,
        user: str,
        channel: str,
        thread_ts: str | None,
        files: list[Json] | None,
    ) -> Json:
        if channel not in self.channels:
            raise KeyError(f"unknown channel {channel!r}: add it with add_channel()")
        msg = Message(channel, self._next_ts(), text, user, thread_ts, files=list(files or []))
        self.history[channel].append(msg)
        event = msg.to_api(self.team_id)
        event.update(channel=channel, event_ts=msg.ts, client_msg_id=str(uuid.uuid4()))
        if thread_ts is not None:
            parent = self._find(self.history[channel], thread_ts)
            event["parent_user_id"] = parent.user if parent else user
        return event

    # ----------------------------------------------------------------- HTTP injection

    async def post_signed(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        secret: str | None = None,
        **kwargs: Any,
    ) -> SignedResponse:
        """``post_signed`` with this fake's signing secret unless ``secret`` is given."""
        return await post_signed(url, payload, secret=secret or self.signing_secret, **kwargs)

    # ----------------------------------------------------------------- Socket Mode injection

    @property
    def socket_connection(self) -> SocketConnection | None:
        """The newest open Socket Mode connection."""
        open_conns = [conn for conn in self.socket_connections if conn.open]
        return open_conns[-1] if open_conns else None

    async def wait_socket_connected(self, timeout: float = 5.0) -> SocketConnection:
        return await self.wait_for(
            lambda: self.socket_connection, timeout, what="a Socket Mode connection"
        )

    async def push_envelope(
        self,
        kind: str,
        payload: Json,
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope (``events_api``, ``slash_commands``, ...); returns its envelope_id."""
        conn = await self.wait_socket_connected(timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = kind != "events_api"
        envelope: Json = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or ""
        self._pushed_at[envelope_id] = time.monotonic()
        conn.sent.append(envelope)
        await conn.ws.send_json(envelope)
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        return await self.wait_for(
            lambda: self.acks.get(envelope_id), timeout, what=f"ack of {envelope_id}"
        )

    async def send_socket_event(
        self,
        payload: Json,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> Ack:
        """Push an ``events_api`` envelope and wait for its ack."""
        envelope_id = await self.push_envelope(
            "events_api",
            payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )
        return await self.wait_ack(envelope_id, timeout)

    async def send_socket_command(self, form: Mapping[str, str], *, timeout: float = 5.0) -> Ack:
        """Push a ``slash_commands`` envelope and wait for its ack (which may carry a payload)."""
        envelope_id = await self.push_envelope("slash_commands", dict(form), timeout=timeout)
        return await self.wait_ack(envelope_id, timeout)

    async def socket_disconnect(
        self, reason: str = "refresh_requested", *, timeout: float = 5.0
    ) -> SocketConnection:
        """Ask the client to reconnect, as Slack does; returns the new connection."""
        old = await self.wait_socket_connected(timeout)
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        old.sent.append(message)
        await old.ws.send_json(message)

        def newer_connection() -> SocketConnection | None:
            conn = self.socket_connection
            return conn if conn is not None and conn.index > old.index else None

        return await self.wait_for(newer_connection, timeout, what="a Socket Mode reconnection")

    # ----------------------------------------------------------------- HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = _bearer_token(request, args)
        call = Call(method, args, time.monotonic())
        self.calls.append(call)
        try:
            if delay := self.latency.get(method):
                await asyncio.sleep(delay)
            body = self._dispatch(method, token, args)
            return web.json_response({"ok": True, **body}, headers=self._api_headers())
        except _ApiError as err:
            call.error = err.error
            headers = {**self._api_headers(), **err.headers}
            return web.json_response(
                {"ok": False, "error": err.error}, status=err.status, headers=headers
            )
        finally:
            self._notify()

    def _dispatch(self, method: str, token: str | None, args: Json) -> Json:
        handler = self._methods.get(method)
        if handler is None:
            self.unhandled.append(method)
            raise _ApiError("unknown_method")
        self._check_token(method, token)
        if fault := self._take_fault(method):
            raise _ApiError(fault.error, fault.status, fault.headers)
        return handler(args)

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise _ApiError("not_authed")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token in (self.bot_token, self.app_token) and token != expected:
            raise _ApiError("not_allowed_token_type")
        if token != expected:
            raise _ApiError("invalid_auth")

    def _api_headers(self) -> dict[str, str]:
        return {"X-OAuth-Scopes": self.scopes}

    async def _handle_webhook(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        body = await _read_args(request)
        self.webhook_posts.append(WebhookPost(hook_id, body, time.monotonic()))
        self._notify()
        if len(self.webhook_posts_for(hook_id)) > self.webhook_post_limit:
            # Approximates Slack's refusal of an exhausted response_url; recorded anyway.
            return web.Response(status=404, text="used_url")
        return web.Response(text="ok")

    async def _handle_download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id in self.file_redirects:
            raise web.HTTPFound(self.file_redirects[file_id])
        if file_id not in self._file_bodies:
            return web.Response(status=404, text="file not found")
        authorized = request.headers.get("Authorization") == f"Bearer {self.bot_token}"
        if not authorized or "files:read" not in self.scopes.split(","):
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        self.file_downloads.append(file_id)
        self._notify()
        data, mimetype = self._file_bodies[file_id]
        return web.Response(body=data, content_type=mimetype)

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()  # autoping answers the SDK's "sdk-ping-pong" pings
        await ws.prepare(request)
        conn = SocketConnection(len(self.socket_connections), ws, time.monotonic())
        self.socket_connections.append(conn)
        await ws.send_json(self._hello())
        self._notify()
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_socket_text(conn, frame.data)
        finally:
            conn.closed_at = time.monotonic()
            self._notify()
        return ws

    def _hello(self) -> Json:
        open_count = sum(conn.open for conn in self.socket_connections)
        return {
            "type": "hello",
            "num_connections": open_count,
            "debug_info": {"host": "fake-applink", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _on_socket_text(self, conn: SocketConnection, data: str) -> None:
        message = json.loads(data)
        conn.received.append(message)
        envelope_id = message.get("envelope_id")
        if envelope_id:
            elapsed = time.monotonic() - self._pushed_at.get(envelope_id, time.monotonic())
            self.acks[envelope_id] = Ack(envelope_id, message.get("payload"), elapsed, conn.index)
        self._notify()

    # ----------------------------------------------------------------- Web API methods

    def _auth_test(self, args: Json) -> Json:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: Json) -> Json:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        ws_root = self.root_url.replace("http://", "ws://", 1)
        return {"url": f"{ws_root}/link?ticket={ticket}&app_id={self.app_id}"}

    def _bots_info(self, args: Json) -> Json:
        if args.get("bot") not in (None, self.bot_id):
            raise _ApiError("bot_not_found")
        bot = {"id": self.bot_id, "deleted": False, "name": "Parley", "app_id": self.app_id}
        return {"bot": {**bot, "user_id": self.bot_user_id}}

    def _chat_post_message(self, args: Json) -> Json:
        channel = self._channel(args)
        text, blocks = self._content(args, previous=None)
        msg = Message(
            channel.id,
            self._next_ts(),
            text,
            self.bot_user_id,
            thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
            blocks=blocks,
            mrkdwn=_as_bool(args.get("mrkdwn")),
            bot_id=self.bot_id,
        )
        self.messages[channel.id].append(msg)
        self.history[channel.id].append(msg)
        return {"channel": channel.id, "ts": msg.ts, "message": msg.to_api(self.team_id)}

    def _chat_update(self, args: Json) -> Json:
        channel = self._channel(args)
        msg = self._own_message(channel.id, args.get("ts"))
        text, blocks = self._content(args, previous=msg)
        msg.edits.append(Edit(text, blocks, time.monotonic()))
        msg.text, msg.blocks = text, blocks
        return {
            "channel": channel.id,
            "ts": msg.ts,
            "text": text,
            "message": msg.to_api(self.team_id),
        }

    def _chat_delete(self, args: Json) -> Json:
        channel = self._channel(args)
        msg = self._own_message(channel.id, args.get("ts"))
        msg.deleted = True
        return {"channel": channel.id, "ts": msg.ts}

    def _chat_post_ephemeral(self, args: Json) -> Json:
        channel = self._channel(args)
        user = str(args.get("user", ""))
        if user not in self.users:
            raise _ApiError("user_not_found")
        text, blocks = self._content(args, previous=None)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        msg = Message(channel.id, self._next_ts(), text, self.bot_user_id, thread_ts, blocks)
        msg.ephemeral_to, msg.bot_id = user, self.bot_id
        self.ephemerals.append(msg)
        return {"message_ts": msg.ts}

    def _conversations_info(self, args: Json) -> Json:
        return {"channel": self._channel(args).to_api()}

    def _conversations_open(self, args: Json) -> Json:
        users = str(args.get("users", "")).split(",")
        if len(users) != 1 or users[0] not in self.users:
            raise _ApiError("user_not_found")
        return {"channel": {"id": self.dm_channel(users[0]).id}}

    def _conversations_replies(self, args: Json) -> Json:
        channel = self._channel(args)
        messages = self.thread(channel.id, str(args.get("ts", "")))
        if not messages:
            raise _ApiError("thread_not_found")
        limit = int(args.get("limit") or 1000)
        return self._page([m.to_api(self.team_id) for m in messages[:limit]])

    def _conversations_history(self, args: Json) -> Json:
        channel = self._channel(args)
        top_level = [m for m in self.history[channel.id] if m.root_ts == m.ts and not m.deleted]
        limit = int(args.get("limit") or 100)
        return self._page([m.to_api(self.team_id) for m in reversed(top_level)][:limit])

    def _files_info(self, args: Json) -> Json:
        file_id = str(args.get("file", ""))
        if file_id not in self.files:
            raise _ApiError("file_not_found")
        return {"file": self.files[file_id]}

    def _reactions_add(self, args: Json) -> Json:
        msg = self._any_message(args)
        name = str(args.get("name", ""))
        if name in msg.reactions:
            raise _ApiError("already_reacted")
        msg.reactions.append(name)
        return {}

    def _reactions_remove(self, args: Json) -> Json:
        msg = self._any_message(args)
        name = str(args.get("name", ""))
        if name not in msg.reactions:
            raise _ApiError("no_reaction")
        msg.reactions.remove(name)
        return {}

    def _users_info(self, args: Json) -> Json:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": user.to_api(self.team_id)}

    # ----------------------------------------------------------------- method helpers

    def _channel(self, args: Json) -> Channel:
        channel_id = str(args.get("channel", ""))
        if channel_id in self.users:  # posting to a user id goes to the DM
            return self.dm_channel(channel_id)
        if channel_id not in self.channels:
            raise _ApiError("channel_not_found")
        return self.channels[channel_id]

    def _content(self, args: Json, previous: Message | None) -> tuple[str, list[Json] | None]:
        """Validate text/blocks like Slack; chat.update keeps what it does not replace."""
        text = args.get("text")
        blocks = args.get("blocks")
        if previous is not None:
            text = previous.text if text is None else text
            blocks = previous.blocks if blocks is None else blocks
        text = "" if text is None else str(text)
        if not text and not blocks:
            raise _ApiError("no_text")
        if len(text) > self.max_text_length:
            raise _ApiError("msg_too_long")
        if blocks is not None and not self._blocks_valid(blocks):
            raise _ApiError("invalid_blocks")
        return text, blocks

    def _blocks_valid(self, blocks: Any) -> bool:
        if not isinstance(blocks, list) or len(blocks) > 50:
            return False
        for block in blocks:
            if not isinstance(block, dict) or "type" not in block:
                return False
            text = block.get("text")
            if (
                isinstance(text, dict)
                and len(str(text.get("text", ""))) > self.max_block_text_length
            ):
                return False
        return True

    def _own_message(self, channel_id: str, ts: Any) -> Message:
        msg = self._find(self.history[channel_id], ts)
        if msg is None or msg.deleted:
            raise _ApiError("message_not_found")
        if msg.user != self.bot_user_id:
            raise _ApiError("cant_update_message")
        return msg

    def _any_message(self, args: Json) -> Message:
        channel = self._channel(args)
        msg = self._find(self.history[channel.id], args.get("timestamp"))
        if msg is None or msg.deleted:
            raise _ApiError("message_not_found")
        return msg

    @staticmethod
    def _find(messages: list[Message], ts: Any) -> Message | None:
        return next((m for m in messages if m.ts == ts), None)

    @staticmethod
    def _page(messages: list[Json]) -> Json:
        return {"messages": messages, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _next_ts(self) -> str:
        # Slack ts values are unique per channel and increasing; keep them strictly increasing.
        now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"
