"""The terminal chat: interactive with streamed replies on a TTY; one message per line, one
reply per message when scripted (stdin not a terminal)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from prompt_toolkit import PromptSession

from bot.core import Parley
from bot.local import terminal_author, terminal_key
from bot.messages import Delta, Facts, Final, Inbound
from bot.policy import Verdict

PROMPT = "you> "

T = TypeVar("T")


async def in_daemon_thread(read: Callable[[], T]) -> T:
    """Run a blocking read in a daemon thread. Unlike `asyncio.to_thread`, a read still blocked
    at shutdown (SIGTERM with stdin open) does not keep the process alive."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(setter: Callable[[Any], None], payload: object) -> None:
        if not result.done():  # the waiting task may have been cancelled meanwhile
            setter(payload)

    def run() -> None:
        setter: Callable[[Any], None]
        payload: object
        try:
            setter, payload = result.set_result, read()
        except (EOFError, OSError, ValueError) as exc:  # closed or unreadable stdin
            setter, payload = result.set_exception, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, setter, payload)

    threading.Thread(target=run, name="parley-stdin", daemon=True).start()
    return await result


# Every line typed at the terminal is addressed to Parley.
_FACTS = Facts(mentioned=True)


class TerminalChat:
    def __init__(
        self,
        parley: Parley,
        conversation: str,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        stderr: TextIO = sys.stderr,
    ) -> None:
        self.parley = parley
        self.key = terminal_key(conversation)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = stdin.isatty()
        # prompt_toolkit reads the terminal without a blocking thread (Ctrl-C/Ctrl-D quit at
        # once) and gives line editing and history.
        self._session: PromptSession[str] | None = PromptSession() if self.interactive else None
        self.author = terminal_author()

    async def _read(self) -> str | None:
        if self._session is not None:
            try:
                return await self._session.prompt_async(PROMPT)
            except (EOFError, KeyboardInterrupt):
                return None
        line = await in_daemon_thread(self.stdin.readline)
        return line.rstrip("\r\n") if line else None

    async def run(self) -> None:
        while (line := await self._read()) is not None:
            if not self.interactive and not line.strip():
                continue
            await self.answer(line)

    async def answer(self, text: str) -> None:
        admission = await self.parley.admit(Inbound(self.key, self.author, text, facts=_FACTS))
        if admission.verdict is not Verdict.ANSWER:
            if admission.notice:
                self.stderr.write(admission.notice + "\n")
            return
        shown = ""
        async for event in self.parley.reply(admission.message):
            if isinstance(event, Delta):
                self.stdout.write(event.text[len(shown) :])
                self.stdout.flush()
                shown = event.text
            elif isinstance(event, Final):
                self._finish(event, shown)

    def _finish(self, final: Final, shown: str) -> None:
        if final.failed:
            if shown:
                self.stdout.write("\n")
            self.stderr.write(final.text + "\n")
            self.stderr.flush()
        else:
            rest = final.text[len(shown) :] if final.text.startswith(shown) else final.text
            self.stdout.write(rest)
            self.stdout.write("\n")
        self.stdout.flush()
