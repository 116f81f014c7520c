"""`parley doctor`: check configuration, database, model endpoint and platforms, and say how
to fix what fails.

Each check function looks at one area and returns its `Check`s (none when the area is not
configured). Features add their own by appending to `CHECKS`, e.g. web search:
`doctor.CHECKS.append(check_search)` with `async def check_search(probe: Probe) -> list[Check]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.checks import Check as Check
from bot.checks import CheckFunction, Probe
from bot.config_files import env_path, toml_path
from bot.doctor_model import check_model
from bot.settings import Settings
from bot.texts import counted, has_text, say
from memory.db import create_engine, schema_status

# Discord application flags: the message content intent, enabled (verified or not).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
_DB_TIMEOUT = 10.0


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
    from adapters.slack.scopes import BOT_SCOPES  # the one list the manifests come from

    granted = {scope.strip() for scope in granted_header.split(",")}
    return [scope for scope in BOT_SCOPES if scope not in granted]


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
    granted_scopes = response_headers.get("x-oauth-scopes", "")
    missing = missing_slack_scopes(granted_scopes)
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
                say(
                    "doctor.slack.scopes_ok",
                    scopes=", ".join(scope.strip() for scope in granted_scopes.split(",")),
                ),
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
