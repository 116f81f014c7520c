"""How calls to the model server are ordered and retried.

Many local servers (llama.cpp's, llama-cpp-python's) compute one request at a time and finish a
request whose client gave up. So background work (summaries, embeddings) waits until no reply is
in flight, one background call at a time; and a timed-out request is not sent again to a local
server, which would only queue the copy behind the original still being computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import openai

from bot.chat_errors import ChatError
from bot.messages import Outcome

# Worth another try: the server was busy, failed inside, or could not be reached.
_RETRIED = frozenset({Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.UNREACHABLE})
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 60.0


class ReplyFirst:
    """Replies go straight to the server; background calls wait for a moment without one."""

    def __init__(self) -> None:
        self._replies = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._background = asyncio.Lock()
        self._busy_until = 0.0  # loop time until which the server may still compute a request

    def still_computing(self, seconds: float) -> None:
        """A request was given up on (timed out): the server may compute it this long yet."""
        loop = asyncio.get_running_loop()
        self._busy_until = max(self._busy_until, loop.time() + seconds)

    @contextlib.asynccontextmanager
    async def reply(self) -> AsyncIterator[None]:
        self._replies += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._replies -= 1
            if not self._replies:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        async with self._background:
            while True:
                await self._idle.wait()
                wait = self._busy_until - asyncio.get_running_loop().time()
                if wait <= 0 and self._idle.is_set():
                    break
                await asyncio.sleep(max(wait, 0))
            yield

    def turn(self, background: bool) -> contextlib.AbstractAsyncContextManager[None]:
        return self.background() if background else self.reply()


def retry_delay(
    error: ChatError, exc: openai.APIError, attempt: int, timeouts: bool
) -> float | None:
    """Seconds to wait before another try of a failed call, or None: do not retry it."""
    if error.outcome is Outcome.TIMEOUT and timeouts:
        return _backoff(attempt)
    if error.outcome not in _RETRIED:
        return None
    if isinstance(exc, openai.APIStatusError):
        try:
            said = float(exc.response.headers.get("retry-after", ""))
        except ValueError:
            said = None
        if said is not None and said >= 0:
            return min(said, _MAX_RETRY_AFTER)
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    return min(0.5 * 2.0**attempt, _MAX_BACKOFF) * (0.75 + random.random() / 2)
