"""`parley doctor`: check configuration, database, model endpoint and platforms, and say how
to fix what fails.

Each check function looks at one area and returns its `Check`s (none when the area is not
configured). Features add their own by appending to `CHECKS`, e.g. web search:
`doctor.CHECKS.append(check_search)` with `async def check_search(probe: Probe) -> list[Check]`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
from openai import AsyncOpenAI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.chat import ChatClient, ChatError, classify
from bot.messages import Outcome
from bot.settings import Settings
from bot.texts import say
from memory.db import create_engine, schema_status

# Discord application flags: the message content intent, enabled (verified or not).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
# Bot scopes Parley needs on Slack (the manifests in deploy/ grant them).
SLACK_REQUIRED_SCOPES = (
    "chat:write",
    "app_mentions:read",
    "im:history",
    "channels:history",
    "commands",
)
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_DB_TIMEOUT = 10.0
_MODEL_TIMEOUT = 30.0
_SHOWN_MODELS = 8


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Probe:
    """What a check function gets: the settings and a shared HTTP session."""

    settings: Settings
    http: aiohttp.ClientSession


CheckFunction = Callable[[Probe], Awaitable[list[Check]]]


def check_configuration(settings: Settings) -> Check:
    files = [
        str(path)
        for path in (Path(os.environ.get("PARLEY_CONFIG", "parley.toml")), Path(".env"))
        if path.is_file()
    ]
    sources = ", ".join(["environment", *files]) if files else say("doctor.config.none")
    return Check("configuration", True, say("doctor.config", sources=sources))


def configuration_error(error: str) -> Check:
    return Check(
        "configuration", False, say("doctor.config.invalid", error=error), say("doctor.config.fix")
    )


# ----------------------------------------------------------------------------- database


async def check_database(probe: Probe) -> list[Check]:
    url = probe.settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = create_engine(url)
    except ImportError as exc:
        return [
            Check(
                "database",
                False,
                say("doctor.db.failed", url=shown, error=exc),
                say("doctor.db.driver_fix"),
            )
        ]
    try:
        async with asyncio.timeout(_DB_TIMEOUT):
            status = await schema_status(engine)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [
            Check(
                "database",
                False,
                say("doctor.db.failed", url=shown, error=error),
                say("doctor.db.fix"),
            )
        ]
    finally:
        await engine.dispose()
    reachable = Check("database", True, say("doctor.db.ok", url=shown))
    if status.unknown:
        return [
            reachable,
            Check(
                "schema",
                False,
                say("doctor.schema.unknown", revision=", ".join(status.unknown)),
                say("doctor.schema.unknown_fix"),
            ),
        ]
    if not status.current:
        detail = say("doctor.schema.empty")
    elif status.pending:
        detail = say(
            "doctor.schema.pending", current=", ".join(status.current), count=status.pending
        )
    else:
        detail = say("doctor.schema.current", revision=", ".join(status.current))
    return [reachable, Check("schema", True, detail)]


# ----------------------------------------------------------------------------- model


def _model_failure(name: str, error: ChatError, detail_key: str, **values: object) -> Check:
    return Check(
        name,
        False,
        say(detail_key, detail=error.detail[:200], **values),
        say(f"doctor.fix.{error.outcome.value}"),
    )


async def _check_model_list(settings: Settings) -> list[Check]:
    """The endpoint answers with the key, and offers the model (when it lists models)."""
    url = settings.openai_base_url
    client = AsyncOpenAI(
        api_key=settings.openai_api_key or "not-needed",
        base_url=url,
        timeout=_MODEL_TIMEOUT,
        max_retries=0,
    )
    try:
        page = await client.models.list()
    except openai.APIError as exc:
        error = classify(exc)
        if error.outcome is Outcome.MODEL_NOT_FOUND:  # no /models route (some local servers)
            return [Check("model endpoint", True, say("doctor.endpoint.no_list", url=url))]
        return [_model_failure("model endpoint", error, "doctor.endpoint.failed", url=url)]
    finally:
        await client.close()
    ids = sorted(model.id for model in page.data)
    checks = [Check("model endpoint", True, say("doctor.endpoint.ok", url=url, count=len(ids)))]
    if settings.model in ids:
        checks.append(Check("model", True, say("doctor.model.ok", model=settings.model)))
    else:
        shown = ", ".join(ids[:_SHOWN_MODELS]) + (", …" if len(ids) > _SHOWN_MODELS else "")
        checks.append(
            Check(
                "model",
                False,
                say("doctor.model.missing", model=settings.model, available=shown),
                say("doctor.fix.model_not_found"),
            )
        )
    return checks


async def _check_reply(settings: Settings) -> Check:
    """A tiny streamed completion, through the same client replies use."""
    chat = ChatClient(
        settings.model_copy(
            update={
                "max_reply_tokens": 16,
                "model_retries": 0,
                "request_timeout": min(settings.request_timeout, _MODEL_TIMEOUT),
            }
        )
    )
    started = time.perf_counter()
    try:
        async for _piece in chat.stream([{"role": "user", "content": "Reply with: OK"}]):
            pass
    except ChatError as error:
        return _model_failure(
            "model reply", error, "doctor.reply.failed", outcome=error.outcome.value
        )
    finally:
        await chat.close()
    return Check("model reply", True, say("doctor.reply.ok", seconds=time.perf_counter() - started))


async def check_model(probe: Probe) -> list[Check]:
    checks = await _check_model_list(probe.settings)
    if not checks[0].ok:
        return checks  # unreachable or key refused: a test reply would only repeat that
    return [*checks, await _check_reply(probe.settings)]


# ----------------------------------------------------------------------------- platforms


class _HttpFailed(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


async def _call(
    probe: Probe, name: str, setting: str, method: str, url: str, headers: Mapping[str, str]
) -> tuple[int, Any, Mapping[str, str]]:
    """One request: (status, JSON body or None, headers); transport failures → _HttpFailed."""
    try:
        async with probe.http.request(method, url, headers=headers) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return response.status, body, response.headers
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = str(exc) or type(exc).__name__
        raise _HttpFailed(
            Check(
                name,
                False,
                say("doctor.http_failed", url=url, error=error),
                say("doctor.http_fix", setting=setting),
            )
        ) from exc


async def check_discord(probe: Probe) -> list[Check]:
    token = probe.settings.discord_token
    if not token:
        return []
    api = probe.settings.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {token}"}
    setting = "PARLEY_DISCORD_API_URL"
    try:
        status, me, _ = await _call(probe, "discord", setting, "GET", f"{api}/users/@me", headers)
        if status != 200 or not isinstance(me, dict):
            return [
                Check(
                    "discord",
                    False,
                    say("doctor.discord.bad_token", status=status),
                    say("doctor.discord.token_fix"),
                )
            ]
        checks = [
            Check(
                "discord", True, say("doctor.discord.ok", name=me.get("username"), id=me.get("id"))
            )
        ]
        status, app, _ = await _call(
            probe, "discord intents", setting, "GET", f"{api}/oauth2/applications/@me", headers
        )
    except _HttpFailed as failed:
        return [failed.check]
    flags = app.get("flags", 0) if status == 200 and isinstance(app, dict) else 0
    if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
        checks.append(Check("discord intents", True, say("doctor.discord.intent_ok")))
    else:
        checks.append(
            Check(
                "discord intents",
                False,
                say("doctor.discord.intent_off"),
                say("doctor.discord.intent_fix"),
            )
        )
    return checks


def missing_slack_scopes(granted_header: str) -> list[str]:
    granted = {scope.strip() for scope in granted_header.split(",")}
    return [scope for scope in SLACK_REQUIRED_SCOPES if scope not in granted]


def _slack_mode(settings: Settings) -> Check:
    if settings.slack_app_token:
        if not settings.slack_app_token.startswith("xapp-"):
            return Check(
                "slack mode",
                False,
                say("doctor.slack.bad_app_token"),
                say("doctor.slack.app_token_fix"),
            )
        return Check("slack mode", True, say("doctor.slack.socket"))
    if settings.slack_signing_secret:
        return Check("slack mode", True, say("doctor.slack.http"))
    return Check("slack mode", False, say("doctor.slack.no_mode"), say("doctor.slack.mode_fix"))


async def check_slack(probe: Probe) -> list[Check]:
    settings = probe.settings
    if not settings.slack_bot_token:
        if settings.slack_app_token or settings.slack_signing_secret:
            return [
                Check(
                    "slack", False, say("doctor.slack.no_bot_token"), say("doctor.slack.token_fix")
                )
            ]
        return []
    url = (settings.slack_api_url or DEFAULT_SLACK_API_URL).rstrip("/") + "/auth.test"
    headers = {"Authorization": f"Bearer {settings.slack_bot_token}"}
    try:
        status, body, response_headers = await _call(
            probe, "slack", "SLACK_API_URL", "POST", url, headers
        )
    except _HttpFailed as failed:
        return [failed.check]
    if not isinstance(body, dict) or not body.get("ok"):
        error = body.get("error") if isinstance(body, dict) else f"HTTP {status}"
        return [
            Check(
                "slack",
                False,
                say("doctor.slack.bad_token", error=error),
                say("doctor.slack.token_fix"),
            )
        ]
    checks = [
        Check("slack", True, say("doctor.slack.ok", user=body.get("user"), team=body.get("team")))
    ]
    missing = missing_slack_scopes(response_headers.get("x-oauth-scopes", ""))
    if missing:
        checks.append(
            Check(
                "slack scopes",
                False,
                say("doctor.slack.scopes_missing", missing=", ".join(missing)),
                say("doctor.slack.scopes_fix"),
            )
        )
    else:
        checks.append(
            Check(
                "slack scopes",
                True,
                say("doctor.slack.scopes_ok", scopes=", ".join(SLACK_REQUIRED_SCOPES)),
            )
        )
    return [*checks, _slack_mode(settings)]


async def check_platforms_configured(probe: Probe) -> list[Check]:
    settings = probe.settings
    if settings.discord_token or settings.slack_bot_token or settings.slack_app_token:
        return []
    return [Check("platforms", True, say("doctor.platforms.none"))]


# The hook: every check function `parley doctor` runs, in the order shown.
CHECKS: list[CheckFunction] = [
    check_database,
    check_model,
    check_platforms_configured,
    check_discord,
    check_slack,
]


async def diagnose(settings: Settings) -> list[Check]:
    """Run every check (concurrently); results come back in `CHECKS` order."""
    async with aiohttp.ClientSession(timeout=_HTTP_TIMEOUT) as http:
        probe = Probe(settings, http)
        groups = await asyncio.gather(*(check(probe) for check in CHECKS))
    return [check_configuration(settings), *(check for group in groups for check in group)]


def report(checks: list[Check]) -> str:
    lines: list[str] = []
    for check in checks:
        key = "doctor.pass" if check.ok else "doctor.fail"
        lines.append(say(key, name=check.name, detail=check.detail))
        if not check.ok and check.fix:
            lines.append(say("doctor.fix", fix=check.fix))
    failed = sum(not check.ok for check in checks)
    lines.append(say("doctor.summary", passed=len(checks) - failed, failed=failed))
    return "\n".join(lines)
