"""Adapters are plug-ins: the core finds them through Python entry points, never by import.

An adapter package declares, in its `pyproject.toml`,

    [project.entry-points."parley.adapters"]
    matrix = "parley_matrix.plugin:PLUGIN"

where `PLUGIN` is an `AdapterPlugin`: the adapter's name (also the `platform` of its
conversation keys), its settings section (read from the same environment, `.env` and
`parley.toml` as the core's), the neutral rules that section sets (allow-lists, admins, DMs:
applied by `bot.policy`), how to build the running adapter, its `parley doctor` checks and any
CLI commands of its own (e.g. `parley discord sync`). Importing the plug-in module must stay
cheap: platform libraries are imported only when the adapter is built or checked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, Protocol

from bot.policy import PlatformRules
from bot.settings import Section, Settings

if TYPE_CHECKING:
    import typer

    from bot.checks import Check, Probe
    from bot.core import Parley

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "parley.adapters"

# How a CLI command runs its work: with the loaded settings, errors reported the CLI's way.
Job = Callable[[Settings], Coroutine[Any, Any, None]]


class JobRunner(Protocol):
    def __call__(self, job: Job, quiet: bool = False) -> None: ...


class Adapter(Protocol):
    name: str

    async def run(self, parley: Parley) -> None:
        """Serve until cancelled; clean up on the way out."""


@dataclass(frozen=True)
class AdapterPlugin(Generic[Section]):
    name: str
    section: type[Section]
    rules: Callable[[Section], PlatformRules]
    # Whether `parley run` starts it (e.g. its token is set), and how.
    configured: Callable[[Section], bool]
    build: Callable[[Section], Adapter] | None = None
    checks: Callable[[Section, Probe], Awaitable[list[Check]]] | None = None
    # Adds the adapter's commands to the `parley` CLI (e.g. `parley chat`, `parley discord …`).
    commands: Callable[[typer.Typer, JobRunner], None] | None = None


@cache
def discover() -> tuple[AdapterPlugin[Any], ...]:
    """Every installed adapter plug-in, by name. A broken one is logged and left out."""
    found: dict[str, AdapterPlugin[Any]] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        try:
            plugin = point.load()
        except (ImportError, AttributeError) as exc:
            log.error(
                "adapter plug-in %s (%s) could not be loaded: %s", point.name, point.value, exc
            )
            continue
        if not isinstance(plugin, AdapterPlugin):
            log.error("adapter plug-in %s (%s) is not an AdapterPlugin", point.name, point.value)
            continue
        found.setdefault(plugin.name, plugin)
    return tuple(found.values())


def plugin_rules(settings: Settings) -> dict[str, PlatformRules]:
    """Each platform's rules, from its plug-in's settings section."""
    return {plugin.name: plugin.rules(settings.section(plugin.section)) for plugin in discover()}


def configured_adapters(settings: Settings) -> list[Adapter]:
    """The adapters `parley run` starts: those whose settings are present."""
    return [
        plugin.build(section)
        for plugin in discover()
        if plugin.build is not None
        and plugin.configured(section := settings.section(plugin.section))
    ]
