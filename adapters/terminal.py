"""The terminal adapter: `parley chat`. Interactive with streamed replies on a TTY; one message
per line, one reply per message when scripted (stdin not a terminal)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from bot.core import Parley
from bot.messages import Author, ConversationKey, Delta, Final, Inbound

PROMPT = "you> "


def terminal_key(conversation: str) -> ConversationKey:
    return ConversationKey(platform="terminal", workspace="local", channel=conversation)


def terminal_author() -> Author:
    # The terminal's user owns the conversation, so admin commands are theirs.
    user = getpass.getuser()
    return Author(id=user, name=user, is_admin=True)


class TerminalChat:
    def __init__(self, parley: Parley, conversation: str, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> None:
        self.parley = parley
        self.key = terminal_key(conversation)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.interactive = stdin.isatty()
        self.author = terminal_author()

    async def _read(self) -> str | None:
        if self.interactive:
            try:
                return await asyncio.to_thread(input, PROMPT)
            except EOFError:
                return None
        line = await asyncio.to_thread(self.stdin.readline)
        return line.rstrip("\r\n") if line else None

    async def run(self) -> None:
        while (line := await self._read()) is not None:
            if not self.interactive and not line.strip():
                continue
            await self.answer(line)

    async def answer(self, text: str) -> None:
        shown = ""
        async for event in self.parley.reply(Inbound(self.key, self.author, text)):
            if isinstance(event, Delta):
                self.stdout.write(event.text[len(shown):])
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
            rest = final.text[len(shown):] if final.text.startswith(shown) else final.text
            self.stdout.write(rest)
            self.stdout.write("\n")
        self.stdout.flush()
