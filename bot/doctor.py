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
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai
from openai import AsyncOpenAI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.chat import ChatClient, ChatError, classify
from bot.checks import Check, Probe
from bot.doctor_model import check_capabilities
from bot.mcp.doctor import check_mcp_servers
from bot.messages import Outcome
from bot.plugins import discover
from bot.settings import Settings
from bot.texts import say
from memory.db import create_engine, schema_status

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_DB_TIMEOUT = 10.0
_MODEL_TIMEOUT = 30.0
_SHOWN_MODELS = 8


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


async def _check_reply(chat: ChatClient) -> Check:
    """A tiny streamed completion, through the same client replies use."""
    started = time.perf_counter()
    try:
        async for _piece in chat.stream(
            [{"role": "user", "content": "Reply with: OK"}], max_tokens=16
        ):
            pass
    except ChatError as error:
        return _model_failure(
            "model reply", error, "doctor.reply.failed", outcome=error.outcome.value
        )
    return Check("model reply", True, say("doctor.reply.ok", seconds=time.perf_counter() - started))


async def check_model(probe: Probe) -> list[Check]:
    checks = await _check_model_list(probe.settings)
    if not checks[0].ok:
        return checks  # unreachable or key refused: a test reply would only repeat that
    timeout = min(probe.settings.request_timeout, _MODEL_TIMEOUT)
    update = {"max_reply_tokens": 64, "model_retries": 0, "request_timeout": timeout}
    chat = ChatClient(probe.settings.model_copy(update=update))
    try:
        reply = await _check_reply(chat)
        more = await check_capabilities(probe.settings, chat) if reply.ok else []
    finally:
        await chat.close()
    return [*checks, reply, *more]


# ----------------------------------------------------------------------------- platforms


async def check_platforms(probe: Probe) -> list[Check]:
    """Each installed adapter's own checks (concurrently), or a note that none is set up."""
    groups = await asyncio.gather(
        *(
            plugin.checks(probe.settings.section(plugin.section), probe)
            for plugin in discover()
            if plugin.checks is not None
        )
    )
    checks = [check for group in groups for check in group]
    return checks or [Check("platforms", True, say("doctor.platforms.none"))]


# The hook: every check function `parley doctor` runs, in the order shown.
CHECKS: list[CheckFunction] = [
    check_database,
    check_model,
    check_platforms,
    check_mcp_servers,
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
