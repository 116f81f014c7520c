"""`parley memory import` of a generated JSON Lines file, run as the real command in a child
process: messages per second over the command's whole run (start-up included), its CPU time
and its peak resident memory (VmHWM, reported by the child as it exits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.fixtures import CACHE, history


@dataclass(frozen=True)
class ImportRun:
    messages: int
    per_second: float
    cpu_seconds: float  # the child's, all threads: wall time is noise on a shared machine
    peak_mb: float
    ok: bool


def jsonl_file(size: int) -> Path:
    """A cached export-format file of `size` messages in one conversation, 30 s apart."""
    path = CACHE / f"import-{size}-v2.jsonl"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    with building.open("w", encoding="utf-8") as out:
        for rows in history(size, seed=3):
            out.writelines(
                json.dumps(
                    {
                        "conversation": "terminal/local/imported",
                        "author": name,
                        "author_id": author_id,
                        "role": role,
                        "content": content,
                        "time": at.isoformat(),
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for role, author_id, name, content, _tokens, at in rows
            )
    building.replace(path)
    return path


# `python -m bot`, but writing its peak resident memory (VmHWM: the high-water mark of its own
# address space) to the file named first. The child's `ru_maxrss` measured the bench instead:
# it keeps the mark from before exec, when the child was a fork of the bench (327 MB in a
# `--full` run, the bench grown by the peer comparison; 176 MB for the import itself).
_REPORTING_PEAK = """
import atexit, pathlib, runpy, sys
out = pathlib.Path(sys.argv.pop(1))
def peak():
    lines = pathlib.Path("/proc/self/status").read_text().splitlines()
    out.write_text(next(line.split()[1] for line in lines if line.startswith("VmHWM:")))
atexit.register(peak)
runpy.run_module("bot", run_name="__main__", alter_sys=True)
"""


def run_import(size: int) -> ImportRun:
    source = jsonl_file(size)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            # The bench's own variables are not the command's (it warns of unknown PARLEY_*).
            **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_BENCH_")},
            "PARLEY_DATA_DIR": tmp,
            "PARLEY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/import.db",
            "OPENAI_API_KEY": "bench",  # the command checks the configuration; no model is called
        }
        peak = Path(tmp) / "peak-kb"
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", _REPORTING_PEAK, str(peak), "memory", "import", str(source)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=None,  # a failure shows its own message
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        peak_mb = int(peak.read_text()) / 1024 if peak.exists() else float("nan")
    cpu = usage.ru_utime + usage.ru_stime
    return ImportRun(size, size / elapsed, cpu, peak_mb, status == 0)
