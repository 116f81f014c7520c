"""SQLite's search index of messages merged apart from the INSERTs that store them.

FTS5 writes each transaction's new entries as a segment, and every search word seeks into every
segment, so segments are merged two at a time (migration 0013). FTS5's own merging
(`automerge`) paces itself by the pages written and runs inside the INSERT that happens to
write the 64th page since its last turn: at a million messages that INSERT took 50-70 ms on the
bench machine, against ~0.3 ms for a store. Which message paid depended only on the count of
writes: a reply's own message as often as the bot's answer (the overhead bench's p99 at 1M: 12
ms, or 71 ms with one unanswered message stored first). Since migration 0015 stores never
merge. The bot calls `merge` after a reply is stored and after a message it does not answer, in
the background: each call owes one step of `STEP_PAGES` pages (the same merges, `usermerge` 2),
each step its own turn on the one connection, so another conversation's statement waits for a
step at most, not for a merge. Paced by the writes, as FTS5 paces itself: merging everything
due at once rewrote a large segment left low in the index (by an import, a rebuild) each time a
smaller one reached its level, ~25 pages a message at 100k. (A connection of its own merging on
a clock, tried before, fell behind under load and made stores wait out SQLite's lock.) Where no
bot runs (a command writing alone), FTS5 still merges a level that reaches 16 segments itself
(`crisismerge`).
"""

from __future__ import annotations

import logging
import sqlite3

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.db import SqliteLink, linked, sqlite_rows

log = logging.getLogger(__name__)

# Pages merged in one step, about FTS5's own pace (a page per level of the index for each page a
# store writes): 1.5-4 ms of CPU on the bench machine at 100k-1M messages, where 16 cost a reply
# ~3 ms more than FTS5's own merging had. The step that ends a large merge also deletes its
# inputs' pages: up to ~100 ms for ~15,000 pages at 1M, once per such merge.
STEP_PAGES = 8
_MERGE = "INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', :pages)"


def merge_step(connection: sqlite3.Connection, pages: int) -> bool:
    """One step of `pages` pages on a connection of its own (commands, the bench's fixtures),
    left uncommitted; whether it merged anything (FTS5's documented test: a command that did
    work changed at least two rows)."""
    before = connection.total_changes
    connection.execute(_MERGE, {"pages": pages})
    return connection.total_changes - before >= 2


class IndexMerging:
    """Merges the messages' search index on SQLite (nothing elsewhere), a step per call while
    anything is due. A call during a run adds its step to that run: what its caller stored is
    committed before the run's next step (a store waits for the one connection behind the step
    in progress, and the run ends right after a step)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.applies = engine.dialect.name == "sqlite"
        self._owed = 0  # steps
        self._running = False
        self._stopped = False

    def stop(self) -> None:
        """End the run after its current step (shutting down)."""
        self._stopped = True

    async def merge(self) -> None:
        """A step of merging, or more if calls came during the run; none once nothing is due.
        A failure is logged and left to the next call."""
        if not self.applies or self._stopped:
            return
        self._owed += 1
        if self._running:
            return
        self._running = True
        try:
            while self._owed and not self._stopped:
                self._owed -= 1
                if not await self._step():
                    self._owed = 0  # nothing due: later calls start afresh
        except SQLAlchemyError as exc:
            self._owed = 0
            log.warning("search index not merged this time: %s", type(exc).__name__)
        finally:
            self._running = False

    async def _step(self) -> bool:
        """One step, committed in the same trip to the driver; whether it merged anything (as
        `merge_step`)."""
        async with linked(self._engine) as link:
            if not isinstance(link, SqliteLink):  # SQLite only (see `merge`)
                return False
            before = link.driver.total_changes
            await sqlite_rows(link, _MERGE, {"pages": STEP_PAGES}, commit=True)
            return link.driver.total_changes - before >= 2
