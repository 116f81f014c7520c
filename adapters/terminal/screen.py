"""How the interactive terminal chat looks (rich): a banner, a "thinking…" indicator until the
first token, and replies rendered as Markdown while they stream. Scripted chats (stdin not a
terminal) print plain text instead and never come here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.text import Text

from bot.texts import say

# Redraws per second of a streaming reply: smooth enough, cheap on a slow terminal.
_REFRESH = 8


class ReplyView:
    """One reply on screen: the spinner until `show` is first called, then Markdown."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.shown = ""

    def show(self, text: str, final: bool = False) -> None:
        # Redrawn by Live's own refresh (a few times a second), not once per token: a long
        # reply re-renders as Markdown in full each time.
        self.shown = text
        self.live.update(Markdown(text), refresh=final)

    def stopped(self) -> None:
        if self.shown:
            self.show(f"{self.shown}\n\n_{say('terminal.stopped')}_", final=True)
        else:
            self.live.update(Text(say("terminal.stopped"), style="dim"), refresh=True)

    def clear(self) -> None:
        """No reply text after all (a failure): leave only what was already shown."""
        self.live.update(Markdown(self.shown) if self.shown else Text(""), refresh=True)


class Screen:
    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.out = Console(file=stdout, highlight=False, soft_wrap=False)
        self.err = Console(file=stderr, highlight=False)

    def banner(self, conversation: str, model: str) -> None:
        self.out.print(say("terminal.banner", conversation=conversation, model=model), style="bold")
        self.out.print(say("terminal.help"), style="dim")

    def note(self, text: str) -> None:
        """Parley's own answer (commands, notices), rendered like a reply."""
        self.out.print(Markdown(text))

    def error(self, text: str) -> None:
        self.err.print(text, style="red", markup=False)

    @contextmanager
    def reply(self) -> Iterator[ReplyView]:
        thinking = Spinner("dots", text=Text(say("terminal.thinking"), style="dim"))
        with Live(
            thinking,
            console=self.out,
            refresh_per_second=_REFRESH,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            yield ReplyView(live)
