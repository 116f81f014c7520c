"""Running the real `parley` command line in a subprocess (async, so fakes in the test's event
loop keep answering it)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Ports for `parley run` processes that a test restarts on the same port: below the kernel's
# ephemeral range (32768 and up here), where servers bound to port 0 and outgoing connections
# land, and a block per xdist worker, so no other test's server takes one while its process is
# down after a kill.
_PORTS_FROM = 20_000
_PORTS_PER_WORKER = 1_000


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


def free_port() -> int:
    """A port nothing listens on, for a `parley run` the test starts (see `_PORTS_FROM`)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    first = _PORTS_FROM + worker * _PORTS_PER_WORKER
    for port in random.sample(range(first, first + _PORTS_PER_WORKER), _PORTS_PER_WORKER):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {first}-{first + _PORTS_PER_WORKER - 1}")


def parley_env(**values: str) -> dict[str, str]:
    """The current environment (already cleaned of PARLEY_/OPENAI_… by conftest) plus `values`,
    importing this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.update(values)
    return env


async def start_parley(
    *args: str,
    env: dict[str, str],
    stdin: int | None = asyncio.subprocess.DEVNULL,
    cwd: Path | None = None,
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )


async def finish(
    process: asyncio.subprocess.Process, within: float = 30, stdin: str | None = None
) -> Finished:
    """Feed `stdin`, wait for the process to exit (at most `within` seconds), collect output."""
    data = stdin.encode() if stdin is not None else None
    stdout, stderr = await asyncio.wait_for(process.communicate(data), within)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


async def run_parley(
    *args: str,
    env: dict[str, str],
    within: float = 30,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> Finished:
    """`parley ARGS` (in `cwd`), with `stdin` piped in when given."""
    pipe = asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL
    return await finish(await start_parley(*args, env=env, stdin=pipe, cwd=cwd), within, stdin)


@asynccontextmanager
async def parley_running(*args: str, env: dict[str, str]) -> AsyncIterator[Process]:
    """`parley ARGS` while the block runs; still running at its end, it is killed (SIGKILL: a
    crash, no clean-up at all)."""
    process = await start_parley(*args, env=env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await finish(process)  # closes its pipes too


async def terminate(process: Process, within: float = 20) -> Finished:
    """SIGTERM, then wait for the exit."""
    process.send_signal(signal.SIGTERM)
    return await finish(process, within)
