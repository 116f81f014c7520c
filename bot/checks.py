"""What a `parley doctor` check is and gets (shared by the check modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bot.settings import Settings


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
