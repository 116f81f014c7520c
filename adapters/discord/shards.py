"""Discord shards: which shard an event arrived on, and the pace of IDENTIFYs when one process
starts several shards."""

from __future__ import annotations

import asyncio
import math

# Discord lets `max_concurrency` sessions IDENTIFY per this many seconds: one per bucket
# (shard id % max_concurrency).
IDENTIFY_WINDOW = 5.0


def shard_of(guild_id: int | None, shard_count: int | None) -> int:
    """The shard Discord sends a server's events on; DMs (no server) come on shard 0."""
    if guild_id is None or not shard_count:
        return 0
    return (guild_id >> 22) % shard_count


class IdentifyPacer:
    """Spaces the IDENTIFYs of one process's shards as Discord's session start limit wants.

    Shards in different buckets start at once; a shard identifying again (after an invalid
    session or a lost connection) waits a full window, as Discord asks after an invalid session.
    """

    def __init__(self, max_concurrency: int = 1, window: float = IDENTIFY_WINDOW) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.window = window
        self._last: dict[int, float] = {}  # bucket → when its latest IDENTIFY may go out
        self._started: set[int] = set()

    async def wait(self, shard_id: int) -> None:
        now = asyncio.get_running_loop().time()
        bucket = shard_id % self.max_concurrency
        at = max(now, self._last.get(bucket, -math.inf) + self.window)
        if shard_id in self._started:
            at = max(at, now + self.window)
        self._started.add(shard_id)
        self._last[bucket] = at  # reserved before sleeping: the next shard queues behind it
        if at > now:
            await asyncio.sleep(at - now)
