"""A fake Discord (REST + websocket gateway) on 127.0.0.1 that drives the real discord.py client.

The fake patches ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` while it
runs, serves one guild (text channels, a thread, roles, members), lets tests inject gateway
events (messages, threads, slash commands) and records everything the bot sends.

Usage::

    async def test_reply(fake_discord: FakeDiscord) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)

        @bot.listen()
        async def on_message(message: discord.Message) -> None:
            if bot.user in message.mentions:
                await message.reply("hi", allowed_mentions=discord.AllowedMentions.none())

        async with fake_discord.running(bot):  # login, connect, wait for ready; close after
            general = fake_discord.channel_id("general")
            asked = await fake_discord.send_message(general, "hello", mentions_bot=True)
            reply = await fake_discord.wait_for_message(general)
        assert reply.content == "hi" and reply.reference_id == asked
        assert fake_discord.unhandled == []

Recorded state: ``messages`` (bot posts per channel, edits applied, with ``edits`` history),
``history(channel_id)`` (every message), ``interactions``, ``typing_calls``, ``command_syncs``,
``threads_created``, ``reactions``, ``requests``, ``identifies`` / ``intents`` and ``unhandled``.

Shards: ``add_guild(name, shard=1, shard_count=2)`` adds a server whose id puts it on that shard
(``(guild_id >> 22) % count``); each gateway session gets READY/GUILD_CREATE only for the guilds
of the shard its IDENTIFY names, and events of a guild go only to the session of its shard (DMs
to shard 0). ``FakeDiscord(shards=2, max_concurrency=2)`` sets what ``GET /gateway/bot``
recommends; with ``required_shards=2`` an IDENTIFY with fewer shards is closed with 4011.
Faults: ``fail_next("PATCH", "/channels/*/messages/*", status=429, retry_after=0.1)``;
``FakeDiscord(message_content_enabled=False)`` refuses the privileged intent (close code 4014).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import itertools
import json
import math
import mimetypes
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

from tests.fakes.serve import serve

JSON = dict[str, Any]
T = TypeVar("T")
OptionValue = str | int | float | bool

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MESSAGE_CONTENT_INTENT = 1 << 15
GUILD_TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = frozenset({PUBLIC_THREAD, PRIVATE_THREAD})
MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
LOADING_FLAG = 1 << 7  # message flag of a deferred ("thinking") interaction response
_POLL_INTERVAL = 0.01
# Fixed ids (below today's snowflakes) so failures show readable, stable numbers.
_FIXED_BASE = 1_300_000_000_000_000_000

_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    attach_files=True,
    embed_links=True,
    add_reactions=True,
    use_application_commands=True,
).value
_ALL_PERMISSIONS = discord.Permissions.all().value
_VIEW_CHANNEL = discord.Permissions.view_channel.flag


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # discord.py parses JSON only if Content-Type is exactly "application/json": aiohttp's
    # text=/json_response add "; charset=utf-8", so send bytes.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error(status: int, code: int, message: str, errors: JSON | None = None) -> web.Response:
    body: JSON = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return _json_response(body, status)


def _no_content() -> web.Response:
    return web.Response(status=204)


class _Snowflakes:
    """Time-based, strictly increasing snowflakes (so ``created_at`` and ordering are right)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False
    role_ids: tuple[int, ...] = ()
    member: bool = True  # of the fake guild (False: known to Discord, met only in DMs)

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }

    def member_payload(self, *, with_user: bool = True) -> JSON:
        # discord.py 2.7 reads member["flags"] unconditionally.
        member: JSON = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "nick": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            member["user"] = self.payload()
        return member


@dataclass
class FakeChannel:
    id: int
    name: str
    type: int = GUILD_TEXT
    position: int = 0
    parent_id: int | None = None  # threads: the text channel they live in
    owner_id: int | None = None  # threads: who created them
    recipient: FakeUser | None = None  # DMs: the other user
    private: bool = False  # @everyone may not view it (a permission overwrite)
    guild_id: int | None = None  # guild channels: their server (None: the fake's first guild)

    @property
    def in_guild(self) -> bool:
        return self.type != DM

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self, guild_id: int) -> JSON:
        if self.type == DM:
            recipients = [self.recipient.payload()] if self.recipient else []
            return {"id": str(self.id), "type": DM, "recipients": recipients, "flags": 0}
        data: JSON = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": (
                [{"id": str(guild_id), "type": 0, "allow": "0", "deny": str(_VIEW_CHANNEL)}]
                if self.private
                else []
            ),
            "nsfw": False,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if self.is_thread:
            data |= {
                "owner_id": str(self.owner_id),
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
                "thread_metadata": {
                    "archived": False,
                    "locked": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": _now_iso(),
                    "create_timestamp": _now_iso(),
                },
            }
        return data


@dataclass
class FakeFile:
    """An attachment: injected by a test (downloadable from the fake) or uploaded by the bot."""

    filename: str
    data: bytes | str
    content_type: str | None = None
    url: str | None = None  # where the attachment claims to live; default: served by the fake

    @property
    def raw(self) -> bytes:
        return self.data.encode() if isinstance(self.data, str) else self.data

    @property
    def mime(self) -> str:
        return self.content_type or mimetypes.guess_type(self.filename)[0] or "text/plain"


@dataclass
class Edit:
    at: float  # time.monotonic() when the fake received the edit
    body: JSON


@dataclass
class RecordedMessage:
    """A message as Discord now stores it (``payload``), plus how it got there."""

    payload: JSON
    request: JSON = field(default_factory=dict)  # body of the creating request ({} if injected)
    created_at: float = field(default_factory=time.monotonic)
    edits: list[Edit] = field(default_factory=list)
    files: list[FakeFile] = field(default_factory=list)
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def author_id(self) -> int:
        return int(self.payload["author"]["id"])

    @property
    def content(self) -> str:
        return str(self.payload.get("content") or "")

    @property
    def allowed_mentions(self) -> JSON | None:
        value = self.request.get("allowed_mentions")
        return value if isinstance(value, dict) else None

    @property
    def reference_id(self) -> int | None:
        ref = self.payload.get("message_reference")
        return int(ref["message_id"]) if ref and ref.get("message_id") else None

    @property
    def edit_times(self) -> list[float]:
        return [e.at for e in self.edits]

    @property
    def min_edit_interval(self) -> float:
        """Smallest gap in seconds between two consecutive edits (inf if fewer than two)."""
        times = self.edit_times
        return min((b - a for a, b in itertools.pairwise(times)), default=math.inf)


@dataclass
class FakeInteraction:
    """A slash command the test injected, and how the bot answered it."""

    id: int
    token: str
    name: str
    channel_id: int
    user: FakeUser
    created_at: float = field(default_factory=time.monotonic)
    callback_type: int | None = None  # 4 = reply, 5 = defer
    callback_body: JSON | None = None
    callback_at: float | None = None
    original: RecordedMessage | None = None
    followups: list[RecordedMessage] = field(default_factory=list)

    @property
    def ack_delay(self) -> float | None:
        return None if self.callback_at is None else self.callback_at - self.created_at


@dataclass
class TypingCall:
    channel_id: int
    at: float


@dataclass
class CommandSync:
    guild_id: int | None  # None = global commands
    commands: list[JSON]
    at: float


@dataclass
class RequestRecord:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    at: float
    body: Any = None
    status: int | None = None


_RECORD = web.RequestKey("record", RequestRecord)  # the request's RequestRecord


@dataclass
class _Fault:
    method: str
    pattern: str
    remaining: int
    status: int
    retry_after: float
    is_global: bool

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class _Uploaded:
    body: JSON
    files: list[FakeFile]


@dataclass
class _Session:
    """A gateway session: one shard's connection (``ws`` None while disconnected)."""

    id: str
    shard: int
    ws: web.WebSocketResponse | None
    seq: int = 0


class FakeDiscord:
    """Fake Discord server; use ``async with FakeDiscord() as fake`` or ``start()``/``close()``."""

    def __init__(
        self,
        *,
        echo_bot_messages: bool = True,
        ack_deadline: float = 3.0,
        application_flags: int = 1 << 19,
        message_content_enabled: bool = True,
        shards: int = 1,
        max_concurrency: int = 1,
        required_shards: int = 1,
    ) -> None:
        self.echo_bot_messages = echo_bot_messages  # Discord sends the bot its own messages too
        # The developer portal's "Message Content Intent" toggle: when off, an IDENTIFY asking
        # for the intent is closed with 4014 (discord.py raises PrivilegedIntentsRequired).
        self.message_content_enabled = message_content_enabled
        self.ack_deadline = ack_deadline  # later interaction callbacks get "Unknown interaction"
        self.application_flags = application_flags
        self.application_id = _FIXED_BASE + 1
        self.guild_id = _FIXED_BASE + 2
        self.guild_name = "Parley Test Guild"
        self.guilds: dict[int, str] = {self.guild_id: self.guild_name}  # id → name
        self.recommended_shards = shards  # what GET /gateway/bot says
        # Fewer shards than this in an IDENTIFY: closed with 4011, "sharding required".
        self.required_shards = required_shards
        self.max_concurrency = max_concurrency
        self._ids = _Snowflakes()
        self.roles: dict[str, FakeRole] = {}
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[int, FakeChannel] = {}
        self._seed_guild()
        self.bot_user = self.users["parley"]

        # Recorded state.
        self.messages: defaultdict[int, list[RecordedMessage]] = defaultdict(list)
        self.interactions: dict[int, FakeInteraction] = {}
        self.typing_calls: list[TypingCall] = []
        self.command_syncs: list[CommandSync] = []
        self.commands: dict[int | None, list[JSON]] = {}  # registered, by guild id (None=global)
        self.threads_created: list[FakeChannel] = []
        self.reactions: list[tuple[int, int, str]] = []  # (channel_id, message_id, emoji)
        self.requests: list[RequestRecord] = []
        self.identifies: list[JSON] = []
        self.unhandled: list[str] = []
        self._history: defaultdict[int, list[RecordedMessage]] = defaultdict(list)
        self._by_id: dict[int, RecordedMessage] = {}
        self._files: dict[int, FakeFile] = {}
        self._faults: list[_Fault] = []

        self._changed = asyncio.Event()
        self.member_lookups = 0  # GET /guilds/{id}/members/{user}
        self._sockets: set[web.WebSocketResponse] = set()
        self._sessions: dict[int, _Session] = {}  # by shard id
        self.shard_count = 1  # of the latest IDENTIFY: how events are routed to sessions
        self._stack = contextlib.AsyncExitStack()
        self.port = 0
        self._saved_base: str | None = None
        self._saved_gateway: yarl.URL | None = None

    # ----------------------------------------------------------------- seed data

    def _seed_guild(self) -> None:
        everyone = FakeRole(self.guild_id, "@everyone", _EVERYONE_PERMISSIONS)
        admin = FakeRole(_FIXED_BASE + 20, "Admin", _ALL_PERMISSIONS, position=2)
        member = FakeRole(_FIXED_BASE + 21, "Member", _EVERYONE_PERMISSIONS, position=1)
        self.roles = {"@everyone": everyone, "admin": admin, "member": member}
        self.add_user("parley", bot=True, roles=("member",))
        self.add_user("alice", roles=("admin",))
        self.add_user("bob", roles=("member",))
        for position, name in enumerate(("general", "random", "help")):
            channel = FakeChannel(_FIXED_BASE + 10 + position, name, position=position)
            self.channels[channel.id] = channel
        thread = FakeChannel(
            _FIXED_BASE + 15,
            "existing-thread",
            type=PUBLIC_THREAD,
            parent_id=self.channel_id("general"),
            owner_id=self.users["alice"].id,
        )
        self.channels[thread.id] = thread

    def add_user(
        self, name: str, *, bot: bool = False, roles: Sequence[str] = (), member: bool = True
    ) -> FakeUser:
        """Register a guild member (role names from ``fake.roles``), or with ``member=False``
        someone outside the guild. Returns the user."""
        user_id = _FIXED_BASE + 100 + len(self.users)
        user = FakeUser(
            user_id, name, bot=bot, role_ids=tuple(self.roles[r].id for r in roles), member=member
        )
        self.users[name] = user
        return user

    def add_guild(
        self, name: str, channels: Sequence[str], *, shard: int = 0, shard_count: int = 1
    ) -> int:
        """Add a server with text channels named ``channels`` (names unique over all guilds);
        its id puts it on ``shard`` of ``shard_count``. Every member of the first guild is a
        member here too. Returns the guild id."""
        taken = {*self.guilds, *self.channels, *(u.id for u in self.users.values())}
        step = (_FIXED_BASE >> 22) + 2
        while step % shard_count != shard or any(i >> 22 == step for i in taken):
            step += 1
        guild_id = step << 22
        self.guilds[guild_id] = name
        for position, channel_name in enumerate(channels):
            channel = FakeChannel(
                guild_id + 10 + position, channel_name, position=position, guild_id=guild_id
            )
            self.channels[channel.id] = channel
        return guild_id

    def guild_of(self, channel: FakeChannel) -> int:
        """The server of a guild channel or thread."""
        return channel.guild_id or self.guild_id

    def shard_of(self, channel: FakeChannel) -> int:
        """The shard a channel's events go to (DMs: shard 0), with the latest shard count."""
        if not channel.in_guild:
            return 0
        return (self.guild_of(channel) >> 22) % self.shard_count

    def _live(self, shard: int) -> bool:
        session = self._sessions.get(shard)
        return session is not None and session.ws is not None and not session.ws.closed

    def user(self, who: FakeUser | str | None) -> FakeUser:
        """A user by name (``None`` -> alice, the default human author)."""
        if isinstance(who, FakeUser):
            return who
        try:
            return self.users[who or "alice"]
        except KeyError:
            raise KeyError(f"unknown user {who!r}; known: {sorted(self.users)}") from None

    def channel_id(self, name: str) -> int:
        """Id of a guild channel or thread by name: general, random, help, existing-thread."""
        for channel in self.channels.values():
            if channel.name == name and channel.in_guild:
                return channel.id
        raise KeyError(f"unknown channel {name!r}")

    def dm_channel(self, who: FakeUser | str | None = None) -> int:
        """Id of the DM channel between the bot and a user (created on first use)."""
        user = self.user(who)
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient == user:
                return channel.id
        return self._add_dm(self._ids.next(), user).id

    def _add_dm(self, channel_id: int, user: FakeUser) -> FakeChannel:
        channel = FakeChannel(channel_id, f"dm-{user.name}", type=DM, recipient=user)
        self.channels[channel_id] = channel
        return channel

    def member_permissions(self, user: FakeUser) -> int:
        perms = self.roles["@everyone"].permissions
        for role in self.roles.values():
            if role.id in user.role_ids:
                perms |= role.permissions
        return _ALL_PERMISSIONS if perms & discord.Permissions.administrator.flag else perms

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        self.port = await self._stack.enter_async_context(serve(app, handle_signals=False))
        self._saved_base = discord.http.Route.BASE
        self._saved_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.base_url + API_PREFIX
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        return self

    async def close(self) -> None:
        if self._saved_base is not None and self._saved_gateway is not None:
            discord.http.Route.BASE = self._saved_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved_gateway
            self._saved_base = self._saved_gateway = None
        for ws in list(self._sockets):
            await ws.close(code=1001)
        await self._stack.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def running(
        self,
        client: discord.Client,
        *,
        token: str = "fake-token",
        timeout: float = 5.0,  # noqa: ASYNC109 - bounds both startup and shutdown
    ) -> AsyncIterator[discord.Client]:
        """Log ``client`` in, connect it, wait for ``on_ready``; close it (and its session) after.

        Connects with ``reconnect=False`` so a dropped gateway fails the test instead of
        retrying with backoff sleeps.
        """
        task: asyncio.Task[None] | None = None
        try:
            await client.login(token)
            task = asyncio.create_task(client.connect(reconnect=False), name="fake-discord-bot")
            try:
                async with asyncio.timeout(timeout):
                    await self._wait_ready(client, task)
            except TimeoutError:
                raise TimeoutError(
                    f"bot not ready in {timeout}s (guild_ready_timeout=0.05?)"
                ) from None
            yield client
        finally:
            await client.close()
            if task is not None:
                await asyncio.wait_for(task, timeout)

    @staticmethod
    async def _wait_ready(client: discord.Client, task: asyncio.Task[None]) -> None:
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            await asyncio.wait({ready, task}, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
        if task.done():
            task.result()  # re-raise why the client stopped
            raise RuntimeError("the bot's connect() returned before it was ready")

    # ----------------------------------------------------------------- waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy; return its value.

        Wakes on every change to the recorded state, and every 10 ms so predicates over the
        client's own state (``bot.get_channel(...)``) work too.
        """
        try:
            async with asyncio.timeout(timeout):
                while not (result := predicate()):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), _POLL_INTERVAL)
                return result
        except TimeoutError:
            raise TimeoutError(
                f"condition not met within {timeout}s; unhandled={self.unhandled}"
            ) from None

    async def wait_for_message(
        self,
        channel_id: int,
        where: Callable[[RecordedMessage], bool] = lambda _: True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RecordedMessage:
        """The bot's latest post in a channel once one satisfies ``where`` (e.g. has edits)."""

        def latest() -> RecordedMessage | None:
            posts = [m for m in self.messages.get(channel_id, []) if where(m)]
            return posts[-1] if posts else None

        found = await self.wait_for(latest, timeout)
        assert found is not None  # wait_for only returns truthy values
        return found

    def last_message(self, channel_id: int) -> RecordedMessage | None:
        """The bot's latest post in a channel (edits applied), or None."""
        posts = self.messages.get(channel_id)
        return posts[-1] if posts else None

    def history(self, channel_id: int) -> list[RecordedMessage]:
        """Every message in a channel (users', bot posts, interaction responses), oldest first."""
        return list(self._history.get(channel_id, []))

    @property
    def intents(self) -> int | None:
        """Intents value of the last IDENTIFY (None before the bot identified)."""
        return self.identifies[-1].get("intents") if self.identifies else None

    @property
    def has_message_content_intent(self) -> bool:
        return bool((self.intents or 0) & MESSAGE_CONTENT_INTENT)

    @property
    def interaction_responses(self) -> list[FakeInteraction]:
        return [i for i in self.interactions.values() if i.callback_type is not None]

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        times: int = 1,
        status: int = 429,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead of handling them.

        ``path_pattern`` is an fnmatch pattern without /api/v10, e.g. "/channels/*/messages/*".
        Note discord.py sleeps ``retry_after`` on 429, and 1 + 2*try seconds on 500/502/504.
        """
        self._faults.append(
            _Fault(method.upper(), path_pattern, times, status, retry_after, is_global)
        )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        if fault.status != 429:
            return _error(fault.status, 0, f"{fault.status}: injected failure")
        body = {
            "message": "You are being rate limited.",
            "retry_after": fault.retry_after,
            "global": fault.is_global,
            "code": 0,
        }
        headers = {
            "Retry-After": str(math.ceil(fault.retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(fault.retry_after),
            "X-RateLimit-Scope": "shared" if not fault.is_global else "global",
            # discord.py treats a 429 without "Via" as a Cloudflare ban and raises at once.
            "Via": "1.1 google",
        }
        if fault.is_global:
            headers["X-RateLimit-Global"] = "true"
        return _json_response(body, 429, headers)

    # ----------------------------------------------------------------- gateway

    async def _dispatch(self, event: str, data: JSON, shard: int = 0) -> None:
        session = self._sessions.get(shard)
        ws = session.ws if session is not None else None
        if session is None or ws is None or ws.closed:
            raise RuntimeError(
                f"cannot dispatch {event}: no bot is connected to shard {shard} of the fake gateway"
            )
        session.seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": session.seq, "d": data}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41_250}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_op(ws, json.loads(msg.data))
        finally:
            self._sockets.discard(ws)
            for session in self._sessions.values():
                if session.ws is ws:
                    session.ws = None  # kept: the client may RESUME it
            self._notify()
        return ws

    async def _on_gateway_op(self, ws: web.WebSocketResponse, payload: JSON) -> None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == 1:  # heartbeat
            await ws.send_json({"op": 11})
        elif op == 2:  # identify
            await self._identify(ws, data)
        elif op == 6:  # resume
            await self._resume(ws, data)
        elif op == 8:  # request guild members
            await self._send_member_chunk(ws, data)
        self._notify()

    async def _identify(self, ws: web.WebSocketResponse, data: JSON) -> None:
        self.identifies.append(data)
        if not self.message_content_enabled and int(data.get("intents", 0)) & (
            MESSAGE_CONTENT_INTENT
        ):
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard, count = data.get("shard") or [0, 1]
        if count < self.required_shards:
            await ws.close(code=4011, message=b"Sharding required.")
            return
        self.shard_count = count
        session = _Session(f"fake-session-{self._ids.next()}", shard, ws)
        self._sessions[shard] = session
        guilds = [g for g in self.guilds if (g >> 22) % count == shard]
        ready: JSON = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,  # must be loopback: reconnects go here
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "shard": [shard, count],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "_trace": ["fake-discord"],
        }
        await self._dispatch("READY", ready, shard)
        for guild_id in guilds:
            await self._dispatch("GUILD_CREATE", self._guild_payload(guild_id), shard)

    async def _resume(self, ws: web.WebSocketResponse, data: JSON) -> None:
        session = next((s for s in self._sessions.values() if s.id == data.get("session_id")), None)
        if session is None:
            await ws.send_json({"op": 9, "d": False})  # invalid session: client re-identifies
            return
        session.ws = ws
        await self._dispatch("RESUMED", {"_trace": ["fake-discord"]}, session.shard)

    async def _send_member_chunk(self, ws: web.WebSocketResponse, data: JSON) -> None:
        session = next((s for s in self._sessions.values() if s.ws is ws), None)
        wanted = data.get("guild_id", str(self.guild_id))
        for guild_id in wanted if isinstance(wanted, list) else [wanted]:
            chunk = {
                "guild_id": str(guild_id),
                "members": [u.member_payload() for u in self.users.values() if u.member],
                "chunk_index": 0,
                "chunk_count": 1,
                "nonce": data.get("nonce"),
            }
            if session is not None:
                await self._dispatch("GUILD_MEMBERS_CHUNK", chunk, session.shard)

    async def request_reconnect(self, shard: int = 0) -> None:
        """Send op 7 RECONNECT: the client reconnects to resume_gateway_url and RESUMEs."""
        session = self._sessions.get(shard)
        if session is not None and session.ws is not None:
            await session.ws.send_json({"op": 7, "d": None})

    def _guild_payload(self, guild_id: int) -> JSON:
        guild_channels = [
            c for c in self.channels.values() if c.in_guild and self.guild_of(c) == guild_id
        ]
        everyone = FakeRole(guild_id, "@everyone", _EVERYONE_PERMISSIONS)
        roles = [everyone, *(r for name, r in self.roles.items() if name != "@everyone")]
        return {
            "id": str(guild_id),
            "name": self.guilds[guild_id],
            "icon": None,
            "owner_id": str(self.users["alice"].id),
            "unavailable": False,
            "large": False,
            # member_count == len(members) marks the guild chunked: no REQUEST_GUILD_MEMBERS.
            "member_count": sum(u.member for u in self.users.values()),
            "joined_at": "2024-01-01T00:00:00+00:00",
            "roles": [r.payload() for r in roles],
            "members": [u.member_payload() for u in self.users.values() if u.member],
            "channels": [c.payload(guild_id) for c in guild_channels if not c.is_thread],
            "threads": [c.payload(guild_id) for c in guild_channels if c.is_thread],
            "presences": [],
            "voice_states": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
        }

    # ----------------------------------------------------------------- injection

    async def send_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        author: FakeUser | str | None = None,
        mentions_bot: bool = False,
        mentions: Sequence[FakeUser | str] = (),
        reference_message_id: int | None = None,
        attachments: Sequence[FakeFile] = (),
        guild: bool | None = None,
    ) -> int:
        """Dispatch MESSAGE_CREATE from a user; returns the new message id.

        ``mentions_bot`` prefixes ``<@bot>`` and lists the bot in ``mentions``. ``guild=False``
        (or a ``dm_channel()`` id) sends a DM. Attachment URLs are served by the fake. Without
        the message_content intent, content is blanked like Discord does (except DMs/mentions).
        """
        sender = self.user(author)
        channel = self._channel_for_injection(channel_id, guild, sender)
        mentioned = [self.user(m) for m in mentions]
        if mentions_bot:
            mentioned.append(self.bot_user)
            if self.bot_user.mention not in content:
                content = f"{self.bot_user.mention} {content}".rstrip()
        payload = self._message_payload(channel, sender, content, mentions=mentioned)
        payload["attachments"] = [self._store_file(channel.id, f) for f in attachments]
        if reference_message_id is not None:
            self._attach_reference(payload, channel, reference_message_id)
        record = self._record(RecordedMessage(payload, files=list(attachments)))
        await self._dispatch(
            "MESSAGE_CREATE", self._visible(record.payload), self.shard_of(channel)
        )
        self._notify()
        return record.id

    def _channel_for_injection(
        self, channel_id: int, guild: bool | None, sender: FakeUser
    ) -> FakeChannel:
        channel = self.channels.get(channel_id)
        if channel is None and guild is False:
            return self._add_dm(channel_id, sender)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}; use fake.channel_id(name)")
        if guild is not None and guild != channel.in_guild:
            raise ValueError(
                f"channel {channel.name!r} guild={channel.in_guild}, asked guild={guild}"
            )
        return channel

    def _visible(self, payload: JSON) -> JSON:
        """The payload as the bot may see it: without the message_content intent Discord blanks
        content (gateway and REST) except in DMs, mentions of the bot and the bot's own posts."""
        bot_id = str(self.bot_user.id)
        always = (
            "guild_id" not in payload
            or payload["author"]["id"] == bot_id
            or any(m["id"] == bot_id for m in payload.get("mentions", []))
        )
        if always or self.has_message_content_intent:
            return payload
        return payload | {"content": "", "embeds": [], "attachments": [], "components": []}

    async def create_thread(
        self,
        name: str,
        *,
        parent_id: int | None = None,
        owner: FakeUser | str | None = None,
        private: bool = False,
        starter_message_id: int | None = None,
    ) -> int:
        """Dispatch THREAD_CREATE for a user-created thread; returns the thread id.

        With ``starter_message_id`` the thread id equals that message's id, as on Discord.
        """
        parent = self.channels[parent_id or self.channel_id("general")]
        thread = FakeChannel(
            starter_message_id or self._ids.next(),
            name,
            type=PRIVATE_THREAD if private else PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=self.user(owner).id,
            guild_id=parent.guild_id,
        )
        await self._add_thread(thread)
        return thread.id

    async def _add_thread(self, thread: FakeChannel) -> None:
        self.channels[thread.id] = thread
        await self._dispatch(
            "THREAD_CREATE",
            thread.payload(self.guild_of(thread)) | {"newly_created": True},
            self.shard_of(thread),
        )
        self._notify()

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """A user deletes a message: later fetches 404 and MESSAGE_DELETE is dispatched."""
        self._by_id[message_id].deleted = True
        data: JSON = {"id": str(message_id), "channel_id": str(channel_id)}
        channel = self.channels[channel_id]
        if channel.in_guild:
            data["guild_id"] = str(self.guild_of(channel))
        await self._dispatch("MESSAGE_DELETE", data, self.shard_of(channel))
        self._notify()

    async def send_interaction(
        self,
        name: str,
        options: Mapping[str, OptionValue] | Sequence[JSON] | None = None,
        *,
        channel_id: int | None = None,
        user: FakeUser | str | None = None,
        resolved: JSON | None = None,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE for slash command ``name``; returns its record.

        ``options`` maps option names to values, or is the raw option list (subcommands,
        attachments with ``resolved``). Channel defaults to #general; DM channel ids work too.
        """
        channel = self.channels[channel_id or self.channel_id("general")]
        invoker = self.user(user)
        interaction = FakeInteraction(
            id=self._ids.next(),
            token="",
            name=name,
            channel_id=channel.id,
            user=invoker,
        )
        interaction.token = f"fake-interaction-token-{interaction.id}"
        self.interactions[interaction.id] = interaction
        payload = self._interaction_payload(interaction, channel, invoker, options, resolved)
        await self._dispatch("INTERACTION_CREATE", payload, self.shard_of(channel))
        self._notify()
        return interaction

    def _interaction_payload(
        self,
        interaction: FakeInteraction,
        channel: FakeChannel,
        invoker: FakeUser,
        options: Mapping[str, OptionValue] | Sequence[JSON] | None,
        resolved: JSON | None,
    ) -> JSON:
        data: JSON = {
            "id": str(self._command_id(interaction.name)),
            "name": interaction.name,
            "type": 1,
            "options": _option_payloads(options),
        }
        if resolved is not None:
            data["resolved"] = resolved
        guild_id = self.guild_of(channel)
        if any(c["name"] == interaction.name for c in self.commands.get(guild_id, [])):
            data["guild_id"] = str(guild_id)  # guild command: the tree looks it up by guild
        payload: JSON = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": 2,
            "token": interaction.token,
            "version": 1,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.payload(guild_id),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,  # required by discord.py 2.7
            "app_permissions": str(self.member_permissions(self.bot_user)),
        }
        if channel.in_guild:
            member = invoker.member_payload() | {
                "permissions": str(self.member_permissions(invoker))
            }
            payload |= {
                "guild_id": str(guild_id),
                "guild_locale": "en-US",
                "member": member,
                "context": 0,
                "authorizing_integration_owners": {"0": str(guild_id)},
            }
        else:
            payload |= {
                "user": invoker.payload(),
                "context": 1,
                "authorizing_integration_owners": {"1": str(invoker.id)},
            }
        return payload

    def _command_id(self, name: str) -> int:
        for guild_id in (self.guild_id, None):
            for command in self.commands.get(guild_id, []):
                if command["name"] == name:
                    return int(command["id"])
        return self._ids.next()

    # ----------------------------------------------------------------- payload builders

    def _message_payload(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        *,
        mentions: Sequence[FakeUser] = (),
    ) -> JSON:
        payload: JSON = {
            "id": str(self._ids.next()),
            "channel_id": str(channel.id),
            "type": 0,
            "content": content,
            "author": author.payload(),
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self._mention_payload(channel, m) for m in mentions],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
        }
        if channel.in_guild:
            payload["guild_id"] = str(self.guild_of(channel))
            payload["member"] = author.member_payload(with_user=False)
        return payload

    def _mention_payload(self, channel: FakeChannel, user: FakeUser) -> JSON:
        if not channel.in_guild:
            return user.payload()
        return user.payload() | {"member": user.member_payload(with_user=False)}

    def _attach_reference(self, payload: JSON, channel: FakeChannel, message_id: int) -> None:
        payload["type"] = 19  # reply
        payload["message_reference"] = {
            "type": 0,
            "message_id": str(message_id),
            "channel_id": str(channel.id),
            **({"guild_id": str(self.guild_of(channel))} if channel.in_guild else {}),
        }
        target = self._by_id.get(message_id)
        # Discord sends referenced_message: null when the target was deleted.
        payload["referenced_message"] = None if target is None or target.deleted else target.payload

    def _store_file(self, channel_id: int, file: FakeFile) -> JSON:
        attachment_id = self._ids.next()
        self._files[attachment_id] = file
        url = (
            file.url or f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{file.filename}"
        )
        return {
            "id": str(attachment_id),
            "filename": file.filename,
            "size": len(file.raw),
            "url": url,
            "proxy_url": url,
            "content_type": file.mime,
        }

    def _record(self, record: RecordedMessage, *, post: bool = False) -> RecordedMessage:
        self._by_id[record.id] = record
        self._history[record.channel_id].append(record)
        if post:
            self.messages[record.channel_id].append(record)
        return record

    # ----------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        path = request.path.removeprefix(API_PREFIX)
        record = RequestRecord(request.method, path, dict(request.query), time.monotonic())
        self.requests.append(record)
        request[_RECORD] = record
        if request.match_info.http_exception is not None:
            self.unhandled.append(f"{request.method} {path}")
            response: web.StreamResponse = _error(404, 0, "404: Not Found")
        elif fault := self._take_fault(request.method, path):
            response = self._fault_response(fault)
        else:
            response = await handler(request)
        record.status = response.status
        self._notify()
        return response

    @staticmethod
    async def _body(request: web.Request) -> _Uploaded:
        """Parse a JSON or multipart (payload_json + files[n]) body; record it on the request."""
        if request.content_type == "multipart/form-data":
            form = await request.post()
            body = json.loads(str(form.get("payload_json", "{}")))
            files = [
                FakeFile(v.filename, v.file.read(), v.content_type)
                for k, v in form.items()
                if isinstance(v, web.FileField) and k.startswith("files")
            ]
        else:
            raw = await request.read()
            body, files = (json.loads(raw) if raw else {}), []
        request[_RECORD].body = body
        return _Uploaded(body, files)

    def _add_routes(self, app: web.Application) -> None:
        api = API_PREFIX
        routes = [
            ("GET", "/gateway", self._gateway),
            ("GET", "/attachments/{channel}/{attachment}/{filename}", self._get_attachment),
            ("GET", f"{api}/gateway", self._get_gateway),
            ("GET", f"{api}/gateway/bot", self._get_gateway),
            ("GET", f"{api}/users/@me", self._get_me),
            ("GET", f"{api}/oauth2/applications/@me", self._get_application),
            ("GET", f"{api}/users/{{user}}", self._get_user),
            ("GET", f"{api}/guilds/{{guild}}/members/{{user}}", self._get_member),
            ("POST", f"{api}/users/@me/channels", self._create_dm),
            ("GET", f"{api}/channels/{{channel}}", self._get_channel),
            ("POST", f"{api}/channels/{{channel}}/typing", self._typing),
            ("GET", f"{api}/channels/{{channel}}/messages", self._get_history),
            ("POST", f"{api}/channels/{{channel}}/messages", self._create_message),
            ("GET", f"{api}/channels/{{channel}}/messages/{{message}}", self._get_message),
            ("PATCH", f"{api}/channels/{{channel}}/messages/{{message}}", self._edit_message),
            ("DELETE", f"{api}/channels/{{channel}}/messages/{{message}}", self._delete_message),
            (
                "PUT",
                f"{api}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}/@me",
                self._add_reaction,
            ),
            (
                "DELETE",
                f"{api}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}/@me",
                self._remove_reaction,
            ),
            ("POST", f"{api}/channels/{{channel}}/threads", self._create_thread),
            (
                "POST",
                f"{api}/channels/{{channel}}/messages/{{message}}/threads",
                self._create_thread,
            ),
            ("POST", f"{api}/interactions/{{interaction}}/{{token}}/callback", self._callback),
            ("POST", f"{api}/webhooks/{{app}}/{{token}}", self._followup),
            (
                "GET",
                f"{api}/webhooks/{{app}}/{{token}}/messages/{{message}}",
                self._get_webhook_msg,
            ),
            (
                "PATCH",
                f"{api}/webhooks/{{app}}/{{token}}/messages/{{message}}",
                self._edit_webhook_msg,
            ),
            (
                "DELETE",
                f"{api}/webhooks/{{app}}/{{token}}/messages/{{message}}",
                self._del_webhook_msg,
            ),
            ("PUT", f"{api}/applications/{{app}}/commands", self._sync_commands),
            ("PUT", f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._sync_commands),
            ("GET", f"{api}/applications/{{app}}/commands", self._get_commands),
            ("GET", f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._get_commands),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)

    # ----------------------------------------------------------------- REST: identity

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {
            "total": 1000,
            "remaining": 999,
            "reset_after": 0,
            "max_concurrency": self.max_concurrency,
        }
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": limit,
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json_response(self.bot_user.payload() | {"verified": True, "mfa_enabled": False})

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_user.name,
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.users["alice"].payload(),
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "bot": self.bot_user.payload(),
            }
        )

    async def _get_attachment(self, request: web.Request) -> web.Response:
        file = self._files.get(int(request.match_info["attachment"]))
        if file is None:
            return _error(404, 0, "404: Not Found")
        return web.Response(body=file.raw, content_type=file.mime)

    # ----------------------------------------------------------------- REST: channels

    def _channel(self, request: web.Request) -> FakeChannel | None:
        return self.channels.get(int(request.match_info["channel"]))

    def _message(self, request: web.Request) -> RecordedMessage | None:
        record = self._by_id.get(int(request.match_info["message"]))
        channel_id = int(request.match_info["channel"])
        if record is None or record.deleted or record.channel_id != channel_id:
            return None
        return record

    async def _get_member(self, request: web.Request) -> web.Response:
        self.member_lookups += 1
        user = self._user_by_id(int(request.match_info["user"]))
        if int(request.match_info["guild"]) not in self.guilds or user is None or not user.member:
            return _error(404, 10007, "Unknown Member")
        return _json_response(user.member_payload())

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self._user_by_id(int(request.match_info["user"]))
        return _json_response(user.payload()) if user else _error(404, 10013, "Unknown User")

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = (await self._body(request)).body
        recipient_id = int(body.get("recipient_id", 0))
        user = self._user_by_id(recipient_id)
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _json_response(self.channels[self.dm_channel(user)].payload(self.guild_id))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        return _json_response(channel.payload(self.guild_of(channel)))

    async def _typing(self, request: web.Request) -> web.Response:
        if self._channel(request) is None:
            return _error(404, 10003, "Unknown Channel")
        self.typing_calls.append(TypingCall(int(request.match_info["channel"]), time.monotonic()))
        return _no_content()  # Discord answers 204 without a body

    async def _get_history(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        limit = int(request.query.get("limit", 50))
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        found = [
            self._visible(m.payload)
            for m in reversed(self._history[channel.id])
            if not m.deleted and after < m.id < before
        ]
        if "after" in request.query:
            found = found[-limit:]  # "after" pages return the oldest ones after the anchor
        return _json_response(found[:limit])

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        upload = await self._body(request)
        problem = self._validate_message(upload)
        if problem is not None:
            return problem
        reference = upload.body.get("message_reference")
        payload = self._bot_message_payload(channel, upload)
        if reference and reference.get("message_id"):
            target = self._by_id.get(int(reference["message_id"]))
            if (target is None or target.deleted) and reference.get("fail_if_not_exists", True):
                errors = {
                    "message_reference": {
                        "_errors": [
                            {"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}
                        ]
                    }
                }
                return _error(400, 50035, "Invalid Form Body", errors)
            self._attach_reference(payload, channel, int(reference["message_id"]))
        record = self._record(RecordedMessage(payload, upload.body, files=upload.files), post=True)
        await self._echo("MESSAGE_CREATE", record)
        return _json_response(record.payload)

    def _bot_message_payload(self, channel: FakeChannel, upload: _Uploaded) -> JSON:
        body = upload.body
        payload = self._message_payload(channel, self.bot_user, str(body.get("content") or ""))
        payload["embeds"] = body.get("embeds") or []
        payload["components"] = body.get("components") or []
        payload["flags"] = int(body.get("flags") or 0)
        payload["attachments"] = [self._store_file(channel.id, f) for f in upload.files]
        return payload

    @staticmethod
    def _validate_message(upload: _Uploaded) -> web.Response | None:
        """Discord's checks that matter for chunking: length and emptiness."""
        body = upload.body
        content = body.get("content")
        if isinstance(content, str) and len(content) > MESSAGE_LIMIT:
            errors = {
                "content": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": "Must be 2000 or fewer in length.",
                        }
                    ]
                }
            }
            return _error(400, 50035, "Invalid Form Body", errors)
        for embed in body.get("embeds") or []:
            if len(embed.get("description") or "") > EMBED_DESCRIPTION_LIMIT:
                return _error(400, 50035, "Invalid Form Body", {"embeds": "description too long"})
        if (
            not content
            and not body.get("embeds")
            and not upload.files
            and not body.get("components")
        ):
            return _error(400, 50006, "Cannot send an empty message")
        return None

    async def _echo(self, event: str, record: RecordedMessage) -> None:
        # Like Discord, tell the bot about its own messages (bots must ignore author.bot).
        shard = self.shard_of(self.channels[record.channel_id])
        if self.echo_bot_messages and self._live(shard):
            await self._dispatch(event, record.payload, shard)

    async def _get_message(self, request: web.Request) -> web.Response:
        record = self._message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        return _json_response(self._visible(record.payload))

    async def _edit_message(self, request: web.Request) -> web.Response:
        record = self._message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        if record.author_id != self.bot_user.id:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        upload = await self._body(request)
        problem = self._validate_edit(upload)
        if problem is not None:
            return problem
        self._apply_edit(record, upload)
        await self._echo("MESSAGE_UPDATE", record)
        return _json_response(record.payload)

    @staticmethod
    def _validate_edit(upload: _Uploaded) -> web.Response | None:
        content = upload.body.get("content")
        if isinstance(content, str) and len(content) > MESSAGE_LIMIT:
            return _error(400, 50035, "Invalid Form Body", {"content": "Must be 2000 or fewer."})
        return None

    def _apply_edit(self, record: RecordedMessage, upload: _Uploaded) -> None:
        body = upload.body
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                record.payload[key] = body[key] if body[key] is not None else ""
        if upload.files:
            record.files.extend(upload.files)
            new = [self._store_file(record.channel_id, f) for f in upload.files]
            record.payload["attachments"] = [*record.payload["attachments"], *new]
        record.payload["edited_timestamp"] = _now_iso()
        record.edits.append(Edit(time.monotonic(), body))

    async def _delete_message(self, request: web.Request) -> web.Response:
        record = self._message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        record.deleted = True
        return _no_content()

    async def _add_reaction(self, request: web.Request) -> web.Response:
        if self._message(request) is None:
            return _error(404, 10008, "Unknown Message")
        info = request.match_info
        self.reactions.append((int(info["channel"]), int(info["message"]), info["emoji"]))
        return _no_content()

    async def _remove_reaction(self, request: web.Request) -> web.Response:
        info = request.match_info
        key = (int(info["channel"]), int(info["message"]), info["emoji"])
        if key in self.reactions:
            self.reactions.remove(key)
        return _no_content()

    async def _create_thread(self, request: web.Request) -> web.Response:
        parent = self._channel(request)
        if parent is None or not parent.in_guild or parent.is_thread:
            return _error(400, 50024, "Cannot execute action on this channel type")
        body = (await self._body(request)).body
        starter = request.match_info.get("message")
        if starter is not None and self._message(request) is None:
            return _error(404, 10008, "Unknown Message")
        is_private = body.get("type") == PRIVATE_THREAD and starter is None
        thread = FakeChannel(
            int(starter) if starter else self._ids.next(),  # message threads reuse its id
            str(body.get("name", "thread")),
            type=PRIVATE_THREAD if is_private else PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=self.bot_user.id,
            guild_id=parent.guild_id,
        )
        self.threads_created.append(thread)
        if self._live(self.shard_of(thread)):
            await self._add_thread(thread)
        else:
            self.channels[thread.id] = thread
        return _json_response(thread.payload(self.guild_of(thread)), 201)

    # ----------------------------------------------------------------- REST: interactions

    def _interaction_by_token(self, request: web.Request) -> FakeInteraction | None:
        token = request.match_info["token"]
        return next((i for i in self.interactions.values() if i.token == token), None)

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["interaction"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.created_at > self.ack_deadline:
            return _error(404, 10062, "Unknown interaction")  # too late: Discord forgot it
        upload = await self._body(request)
        kind = int(upload.body.get("type", 0))
        interaction.callback_type = kind
        interaction.callback_body = upload.body
        interaction.callback_at = time.monotonic()
        if kind in (4, 5):
            interaction.original = self._interaction_message(interaction, kind, upload)
        return _json_response(self._callback_payload(interaction, kind))

    def _interaction_message(
        self, interaction: FakeInteraction, kind: int, upload: _Uploaded
    ) -> RecordedMessage:
        data = upload.body.get("data") or {}
        channel = self.channels[interaction.channel_id]
        content = str(data.get("content") or "") if kind == 4 else ""
        payload = self._message_payload(channel, self.bot_user, content)
        payload["type"] = 20  # chat input command response
        payload["flags"] = int(data.get("flags") or 0) | (LOADING_FLAG if kind == 5 else 0)
        payload["embeds"] = data.get("embeds") or []
        payload["attachments"] = [self._store_file(channel.id, f) for f in upload.files]
        payload["interaction_metadata"] = {
            "id": str(interaction.id),
            "type": 2,
            "user": interaction.user.payload(),
            "authorizing_integration_owners": {},
        }
        return self._record(RecordedMessage(payload, data, files=upload.files))

    def _user_by_id(self, user_id: int) -> FakeUser | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    @staticmethod
    def _callback_payload(interaction: FakeInteraction, kind: int) -> JSON:
        original = interaction.original
        info: JSON = {"id": str(interaction.id), "type": 2}
        payload: JSON = {"interaction": info}
        if original is not None:
            info |= {
                "response_message_id": str(original.id),
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(original.payload["flags"] & 64),
            }
            payload["resource"] = {"type": kind, "message": original.payload}
        return payload

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction_by_token(request)
        if interaction is None:
            return _error(404, 10015, "Unknown Webhook")
        if interaction.callback_type is None:
            return _error(400, 40060, "Interaction has not been acknowledged.")
        upload = await self._body(request)
        problem = self._validate_message(upload)
        if problem is not None:
            return problem
        channel = self.channels[interaction.channel_id]
        record = self._record(
            RecordedMessage(
                self._bot_message_payload(channel, upload), upload.body, files=upload.files
            )
        )
        interaction.followups.append(record)
        return _json_response(record.payload)

    def _webhook_message(self, request: web.Request) -> RecordedMessage | None:
        interaction = self._interaction_by_token(request)
        if interaction is None:
            return None
        wanted = request.match_info["message"]
        if wanted == "@original":
            original = interaction.original
            return original if original is not None and not original.deleted else None
        return next(
            (m for m in interaction.followups if str(m.id) == wanted and not m.deleted), None
        )

    async def _get_webhook_msg(self, request: web.Request) -> web.Response:
        record = self._webhook_message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        return _json_response(record.payload)

    async def _edit_webhook_msg(self, request: web.Request) -> web.Response:
        record = self._webhook_message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        upload = await self._body(request)
        problem = self._validate_edit(upload)
        if problem is not None:
            return problem
        self._apply_edit(record, upload)
        record.payload["flags"] = int(record.payload.get("flags") or 0) & ~LOADING_FLAG
        return _json_response(record.payload)

    async def _del_webhook_msg(self, request: web.Request) -> web.Response:
        record = self._webhook_message(request)
        if record is None:
            return _error(404, 10008, "Unknown Message")
        record.deleted = True
        return _no_content()

    # ----------------------------------------------------------------- REST: commands

    async def _sync_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        guild_id = int(guild) if guild else None
        body: list[JSON] = await request.json()
        request[_RECORD].body = body
        previous = {c["name"]: c["id"] for c in self.commands.get(guild_id, [])}
        registered = [self._registered_command(c, guild_id, previous) for c in body]
        self.commands[guild_id] = registered
        self.command_syncs.append(CommandSync(guild_id, registered, time.monotonic()))
        return _json_response(registered)

    def _registered_command(
        self, command: JSON, guild_id: int | None, ids: Mapping[str, str]
    ) -> JSON:
        registered = dict(command)
        registered |= {
            "id": ids.get(command["name"]) or str(self._ids.next()),  # Discord keeps ids by name
            "application_id": str(self.application_id),
            "version": str(self._ids.next()),
            "description": command.get("description", ""),
        }
        if guild_id is not None:
            registered["guild_id"] = str(guild_id)
        return registered

    async def _get_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        return _json_response(self.commands.get(int(guild) if guild else None, []))


def _option_payloads(options: Mapping[str, OptionValue] | Sequence[JSON] | None) -> list[JSON]:
    if options is None:
        return []
    if isinstance(options, Mapping):
        return [{"name": k, "type": _option_type(v), "value": v} for k, v in options.items()]
    return list(options)


def _option_type(value: OptionValue) -> int:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
