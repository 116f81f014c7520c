"""Run the real `parley` command line in a subprocess, as a person would."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def parley_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
    """`parley ARGS` with `stdin` piped in; the environment is the test's plus `env`."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=full_env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 30)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())
