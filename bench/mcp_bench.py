"""MCP tool latency: the reference `mcp-server-time` over stdio, through Parley's own classes.

    PYTHONPATH=. python bench/mcp_bench.py [--calls 50]

Times, on this machine:
- start: spawning the server process, the protocol handshake and `tools/list` (`McpServer.connect`);
- call: one `get_current_time` round trip through `McpTool.run` (JSON arguments parsed, the call
  over stdio, the result rendered, cut to its budget and counted with tiktoken), median and p95;
- stop: closing the server's stdin until its process has exited (`McpServer.stop`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

from bot.logs import Redactor
from bot.mcp.config import StdioServer
from bot.mcp.server import McpServer
from bot.mcp.tool import McpTool
from memory.tokens import TokenCounter


async def bench(calls: int) -> None:
    command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if command is None:
        sys.exit("mcp-server-time is not installed (pip install -e '.[dev]')")
    counter = await asyncio.to_thread(TokenCounter, "gpt-4o-mini")
    server = McpServer("time", StdioServer(command=command), timeout=30, redact=Redactor())
    began = time.perf_counter()
    await server.connect()
    started = time.perf_counter() - began
    [listed] = [tool for tool in server.tools if tool.name == "get_current_time"]
    tool = McpTool(server, listed, "time__get_current_time", counter, room=2000)
    seconds = []
    for _ in range(calls):
        began = time.perf_counter()
        result = await tool.run('{"timezone": "Asia/Seoul"}', 2000, 1)
        seconds.append(time.perf_counter() - began)
        assert "Asia/Seoul" in result.content, result.content
    began = time.perf_counter()
    await server.stop()
    stopped = time.perf_counter() - began
    seconds.sort()
    print(f"start (spawn + handshake + tools/list): {started * 1000:.0f} ms")
    print(
        f"call via McpTool.run, {calls} calls: median {statistics.median(seconds) * 1000:.1f} ms, "
        f"p95 {seconds[int(len(seconds) * 0.95) - 1] * 1000:.1f} ms"
    )
    print(f"stop (stdin closed until exit): {stopped * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    asyncio.run(bench(parser.parse_args().calls))


if __name__ == "__main__":
    main()
