"""What `parley doctor` checks return, and the HTTP helper platform checks share (the core's
checks are in `bot.doctor`; each adapter plug-in brings its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.settings import Settings
from bot.texts import say


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


class HttpFailed(Exception):
    """The request itself failed; `check` says so and how to fix it."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


async def http_call(
    probe: Probe, name: str, setting: str, method: str, url: str, headers: Mapping[str, str]
) -> tuple[int, Any, Mapping[str, str]]:
    """One request: (status, JSON body or None, headers); transport failures → HttpFailed."""
    try:
        async with probe.http.request(method, url, headers=headers) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return response.status, body, response.headers
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = str(exc) or type(exc).__name__
        raise HttpFailed(
            Check(
                name,
                False,
                say("doctor.http_failed", url=url, error=error),
                say("doctor.http_fix", setting=setting),
            )
        ) from exc
