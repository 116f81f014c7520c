"""Whether a database's schema is current, told without importing alembic.

Alembic and its script machinery cost ~12 MB resident for the life of the process; a bot
starting on a current database (nearly every start) needs only to compare the revisions the
database records with the ones this code's migration files end at.
"""

from __future__ import annotations

import ast
import asyncio
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_RECORDED = text("SELECT version_num FROM alembic_version")


def _assigned(path: Path) -> dict[str, object]:
    """The module-level `revision` and `down_revision` of a migration file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    return found


@cache  # the files do not change while the process runs
def heads() -> frozenset[str]:
    """The revisions no migration builds on: what an upgrade to "head" ends at."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        assigned = _assigned(path)
        revision, down = assigned.get("revision"), assigned.get("down_revision")
        if isinstance(revision, str):
            revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple):  # a merge
            parents.update(str(parent) for parent in down)
    return frozenset(revisions - parents)


async def is_current(engine: AsyncEngine) -> bool:
    """The database records exactly this code's heads (False without a schema yet)."""
    try:
        async with engine.connect() as connection:
            recorded = frozenset((await connection.execute(_RECORDED)).scalars())
    except DBAPIError:  # no alembic_version table: a new database
        return False
    return bool(recorded) and recorded == await asyncio.to_thread(heads)
