"""The terminal chat: interactive on a TTY (banner, Markdown replies rendered as they stream,
Ctrl-C stops a reply); one message per line, one plain reply per message when scripted (stdin
not a terminal)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from prompt_toolkit import PromptSession

from adapters.terminal.screen import ReplyView, Screen
from bot.core import Parley
from bot.local import terminal_author, terminal_key
from bot.messages import Delta, Facts, Final, Inbound
from bot.policy import Verdict
from bot.texts import say

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
        self.conversation = conversation
        self.key = terminal_key(conversation)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = stdin.isatty()
        # prompt_toolkit reads the terminal without a blocking thread (Ctrl-D quits at once)
        # and gives line editing and history.
        self._session: PromptSession[str] | None = PromptSession() if self.interactive else None
        self._screen = Screen(stdout, stderr) if self.interactive else None
        self.author = terminal_author()
        self.failed = False  # a reply failed: a scripted chat exits non-zero
        self._replying: asyncio.Task[None] | None = None

    async def _read(self) -> str | None:
        if self._session is not None:
            try:
                # Not prompt_toolkit's SIGINT handler: it would replace (and then drop) the one
                # that lets Ctrl-C stop a reply. At the prompt Ctrl-C is a key, and leaves.
                return await self._session.prompt_async(PROMPT, handle_sigint=False)
            except (EOFError, KeyboardInterrupt):
                return None
        line = await in_daemon_thread(self.stdin.readline)
        return line.rstrip("\r\n") if line else None

    async def run(self) -> None:
        if self._screen is not None:
            self._screen.banner(self.conversation, self.parley.settings.model)
        while (line := await self._read()) is not None:
            if not line.strip():
                continue  # an empty line is no message
            if _command_name(line) == "listen":
                self._say(say("listen.terminal"))
                continue
            await self._answer_interruptibly(line)

    def interrupt(self) -> bool:
        """Ctrl-C: stop the reply being written, if any (True), rather than the program."""
        if self._replying is None or self._replying.done():
            return False
        self._replying.cancel()
        return True

    async def _answer_interruptibly(self, text: str) -> None:
        self._replying = asyncio.create_task(self.answer(text))
        try:
            await self._replying
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the program is stopping, not just this reply
        finally:
            self._replying = None

    async def answer(self, text: str) -> None:
        admission = await self.parley.admit(Inbound(self.key, self.author, text, facts=_FACTS))
        if admission.verdict is not Verdict.ANSWER:
            if admission.notice:
                self.stderr.write(admission.notice + "\n")
            return
        if self._screen is None:
            await self._answer_plain(admission.message)
            return
        with self._screen.reply() as view:
            try:
                async for event in self.parley.reply(admission.message):
                    if isinstance(event, Delta):
                        view.show(event.text)
                    elif isinstance(event, Final):
                        self._show_final(event, view)
            except asyncio.CancelledError:
                view.stopped()
                raise

    def _show_final(self, final: Final, view: ReplyView) -> None:
        assert self._screen is not None
        if final.failed:
            self.failed = True
            view.clear()
            self._screen.error(final.text)
        else:
            view.show(final.text, final=True)

    async def _answer_plain(self, message: Inbound) -> None:
        shown = ""
        async for event in self.parley.reply(message):
            if isinstance(event, Delta):
                self.stdout.write(event.text[len(shown) :])
                self.stdout.flush()
                shown = event.text
            elif isinstance(event, Final):
                self._finish(event, shown)

    def _say(self, text: str) -> None:
        if self._screen is not None:
            self._screen.note(text)
        else:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def _finish(self, final: Final, shown: str) -> None:
        if final.failed:
            self.failed = True
            if shown:
                self.stdout.write("\n")
            self.stderr.write(final.text + "\n")
            self.stderr.flush()
        else:
            rest = final.text[len(shown) :] if final.text.startswith(shown) else final.text
            self.stdout.write(rest)
            self.stdout.write("\n")
        self.stdout.flush()


def _command_name(line: str) -> str | None:
    word = line.strip().split(maxsplit=1)[0]
    return word[1:].lower() if word.startswith("/") and len(word) > 1 else None
