"""A shared document's text, within bounds: at most `max_pages` pages and `max_chars`
characters, and for PDFs within `timeout` seconds.

A crafted PDF can keep a parser busy for minutes or fill memory, and a thread cannot be
stopped: PDFs are read in a child process (`python -m memory.extract`, its memory capped) that
is killed when the time is up. Plain text is only decoded and cut, in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import json
import resource
import sys
from dataclasses import dataclass
from typing import Literal

Cut = Literal["pages", "chars"]
# Address space the PDF reader's process may use.
_MEMORY_LIMIT = 2 * 1024**3


@dataclass(frozen=True)
class Limits:
    max_pages: int = 200
    max_chars: int = 2_000_000
    max_passages: int = 2_000
    timeout: float = 60.0  # seconds for a PDF's extraction


@dataclass(frozen=True)
class Extracted:
    text: str
    cut: Cut | None = None  # which limit shortened the text, if one did


class ExtractionFailed(Exception):
    """The PDF is unreadable (`detail` says why) or took longer than allowed (`timed_out`)."""

    def __init__(self, detail: str, timed_out: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.timed_out = timed_out


def pdf_text(data: bytes, max_pages: int, max_chars: int) -> Extracted:
    """The text of the first `max_pages` pages, stopping at `max_chars` (CPU-bound)."""
    from pypdf import PdfReader  # only where PDFs are read: pypdf costs ~7 MB resident

    reader = PdfReader(io.BytesIO(data))
    pages: list[str] = []
    length = 0
    for number, page in enumerate(reader.pages):
        if number == max_pages:
            return Extracted("\n\n".join(pages), "pages")
        pages.append(page.extract_text() or "")
        length += len(pages[-1]) + 2
        if length > max_chars:
            return Extracted("\n\n".join(pages)[:max_chars], "chars")
    return Extracted("\n\n".join(pages))


async def extract_pdf(data: bytes, limits: Limits) -> Extracted:
    """`pdf_text` in a child process, killed after `limits.timeout` seconds."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "memory.extract",
        str(limits.max_pages),
        str(limits.max_chars),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(limits.timeout):
            output, _ = await child.communicate(data)
    except TimeoutError as exc:
        child.kill()
        await child.wait()
        raise ExtractionFailed(f"no text after {limits.timeout:g} s", timed_out=True) from exc
    try:
        answer = json.loads(output)
    except ValueError as exc:  # killed by the system (memory), or crashed
        raise ExtractionFailed(f"the reader stopped (exit status {child.returncode})") from exc
    if "error" in answer:
        raise ExtractionFailed(str(answer["error"]))
    return Extracted(str(answer["text"]), answer["cut"])


def _main() -> None:
    from pypdf.errors import PyPdfError

    max_pages, max_chars = int(sys.argv[1]), int(sys.argv[2])
    # A decompression bomb fails here with MemoryError instead of swapping the machine.
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    try:
        found = pdf_text(sys.stdin.buffer.read(), max_pages, max_chars)
        answer: dict[str, object] = {"text": found.text, "cut": found.cut}
    except (PyPdfError, ValueError, KeyError, TypeError, RecursionError, MemoryError) as exc:
        # pypdf raises plain Python errors for many malformed files as well as its own.
        answer = {"error": str(exc)[:200] or type(exc).__name__}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    _main()
