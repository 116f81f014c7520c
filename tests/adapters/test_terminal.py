"""The interactive terminal chat, for real: `parley chat` in a subprocess on a pseudo-terminal,
against the fake model. What a person sees: the banner, "thinking…", Markdown rendered, Ctrl-C
stopping only the reply, empty lines ignored."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModel, Reply
from tests.process import parley_env

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """The master side of a pseudo-terminal `parley chat` runs on."""

    def __init__(self, master: int, process: asyncio.subprocess.Process) -> None:
        self.master, self.process = master, process
        self.raw = ""
        self._more = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            self.raw += os.read(self.master, 65536).decode(errors="replace")
        self._more.set()

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.raw)

    async def wait_for(self, needle: str, within: float = 20, since: int = 0) -> int:
        """Wait until `needle` is shown (after position `since`); where it ends."""
        try:
            async with asyncio.timeout(within):
                while (found := self.text.find(needle, since)) < 0:
                    self._more.clear()
                    await self._more.wait()
                return found + len(needle)
        except TimeoutError:
            raise AssertionError(f"{needle!r} not shown; the screen:\n{self.text}") from None

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())


@contextlib.asynccontextmanager
async def terminal_chat(env: dict[str, str]) -> AsyncIterator[Terminal]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat", stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    terminal = Terminal(master, process)
    try:
        yield terminal
    finally:
        asyncio.get_running_loop().remove_reader(master)
        if process.returncode is None:
            process.kill()
        await process.wait()
        os.close(master)


@pytest.mark.timeout(120)  # start-up alone may take a minute on a loaded machine
async def test_interactive_chat(fake_model: FakeModel, tmp_path: Path) -> None:
    env = parley_env(
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_model.base_url,
        PARLEY_DATA_DIR=str(tmp_path),
        PARLEY_MODEL="tiny-model",
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",
        COLUMNS="100",
    )
    fake_model.script(
        Reply("Here is **bold** and `code`.", delay=0.6),
        Reply("word " * 400, chunk=5, chunk_delay=0.05),
    )
    async with terminal_chat(env) as term:
        await term.wait_for("you>", within=60)  # start-up: imports, migrations
        assert 'conversation "default"' in term.text and "tiny-model" in term.text
        assert "Ctrl-D" in term.text  # how to leave

        term.type("\r")  # an empty line is no message
        term.type("show me\r")
        await term.wait_for("thinking")  # until the first token
        await term.wait_for("Here is bold and code.")  # Markdown rendered, not **raw**
        assert "\x1b[1mbold" in term.raw
        await term.wait_for("you>")
        assert len(fake_model.requests) == 1

        term.type("go on\r")
        await term.wait_for("word word word")
        term.process.send_signal(signal.SIGINT)  # Ctrl-C while the reply streams
        await term.wait_for("(stopped)")
        term.type("/frobnicate\r")  # the program is still there, and answers this itself
        answered = await term.wait_for("Unknown command /frobnicate")
        assert len(fake_model.requests) == 2

        await term.wait_for("you>", since=answered)  # keys typed earlier would not be raw
        term.type("\x04")  # Ctrl-D leaves
        async with asyncio.timeout(20):
            assert await term.process.wait() == 0
    assert "Traceback" not in term.text
