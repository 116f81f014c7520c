"""`parley doctor`: check configuration, database, model endpoint and platforms, and say how
to fix what fails.

Each check function looks at one area and returns its `Check`s (none when the area is not
configured). Features add their own by appending to `CHECKS`, e.g. web search:
`doctor.CHECKS.append(check_search)` with `async def check_search(probe: Probe) -> list[Check]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.checks import Check, Probe
from bot.config_files import env_path, toml_path
from bot.doctor_model import check_model
from bot.mcp.doctor import check_mcp_servers
from bot.plugins import discover
from bot.settings import Settings
from bot.texts import counted, has_text, say
from memory.db import create_engine, schema_status

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_DB_TIMEOUT = 10.0


CheckFunction = Callable[[Probe], Awaitable[list[Check]]]


def check_configuration(settings: Settings) -> Check:
    found = (toml_path(), env_path())
    files = [str(path.resolve()) for path in found if path is not None and path.is_file()]
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
            "doctor.schema.pending",
            current=", ".join(status.current),
            count=counted("migration", status.pending),
        )
    else:
        detail = say("doctor.schema.current", revision=", ".join(status.current))
    return [reachable, Check("schema", True, detail)]


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
        groups = await asyncio.gather(*(check(probe) for check in CHECKS), return_exceptions=True)
    checks = [check_configuration(settings)]
    for function, group in zip(CHECKS, groups, strict=True):
        if isinstance(group, Exception):
            # The doctor never crashes: a check that broke is one more failure to report.
            name = function.__name__.removeprefix("check_").replace("_", " ")
            detail = say("doctor.crashed", error=f"{type(group).__name__}: {group}")
            checks.append(Check(name, False, detail))
        elif isinstance(group, BaseException):
            raise group
        else:
            checks += group
    return checks


def report(checks: list[Check]) -> str:
    lines: list[str] = []
    for check in checks:
        key = "doctor.pass" if check.ok else "doctor.fail"
        name_key = f"doctor.name.{check.name}"
        name = say(name_key) if has_text(name_key) else check.name
        lines.append(say(key, name=name, detail=check.detail))
        if not check.ok and check.fix:
            lines.append(say("doctor.fix", fix=check.fix))
    failed = sum(not check.ok for check in checks)
    lines.append(say("doctor.summary", passed=len(checks) - failed, failed=failed))
    return "\n".join(lines)
