"""A stdio server's stderr, line by line into Parley's log: its errors reach the operator with
the server's name, through the same redaction and format (JSON lines stay JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

from bot.logs import Redactor

log = logging.getLogger(__name__)

_LINE_CHARS = 500
_LINE_LIMIT = 64 * 1024
_DRAIN_SECONDS = 1.0


async def _forward(stream: asyncio.StreamReader, server: str, redact: Redactor) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the limit: skip what was buffered
            continue
        if not line:
            return
        text = line.decode(errors="replace").rstrip()
        if text.strip():
            log.info("MCP server %s: %s", server, redact(text[:_LINE_CHARS]))


@asynccontextmanager
async def stderr_to_log(server: str, redact: Redactor) -> AsyncIterator[TextIO]:
    """A file to give the server process as its stderr, read into the log until the block ends."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    writer = os.fdopen(write_fd, "w")
    stream = asyncio.StreamReader(limit=_LINE_LIMIT)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), reader
    )
    task = asyncio.create_task(_forward(stream, server, redact), name=f"mcp {server} stderr")
    try:
        yield writer
    finally:
        writer.close()  # with the process gone, the pipe ends: the last lines are read
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                await asyncio.shield(task)
        except TimeoutError:  # a descendant still holds the pipe open
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport.close()
