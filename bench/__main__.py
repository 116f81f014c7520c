"""Parley's benchmarks: every figure of issue 14, printed by one command.

    nice -n 10 python -m bench             # quick sizes, a few minutes
    nice -n 10 python -m bench --full      # the issue's sizes (1M messages, 10k conversations…)
    python -m bench --only overhead,peer   # some sections

Each printed line says what it times. Large fixtures are built once and cached (see
bench/fixtures.py); PostgreSQL figures need the server of $PARLEY_BENCH_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import importing, peer, pipeline, postgres
from bench.fake import instant_model
from bench.fixtures import reset, sqlite_copy
from bench.overhead import bench_settings, measure
from bot.runtime import open_parley
from memory.db import migrated_engine

_LOAD = (sys.executable, "-m", "bench.load")
SECTIONS = ("overhead", "throughput", "peer", "footprint", "import", "pipeline")


def show(figure: str, value: str, target: str, what: str) -> None:
    print(f"{figure:<44} {value:>22}  (target {target})  {what}", flush=True)


async def overhead(model: str, full: bool, count: int) -> None:
    sizes = [1_000, 100_000, 1_000_000] if full else [1_000, 100_000]
    what = (
        f"reply() called -> request at the fake model; recall+summary on; {count} messages; "
        "CPU: median CPU ms of the bot process per whole reply"
    )
    pg = await postgres.available()
    for size in sizes:
        async with sqlite_copy(size) as url:
            sqlite = await measure(model, url, 4096, count)
        runs = [("SQLite", sqlite)]
        if pg:
            url = await postgres.fixture(size)
            await reset(url, size)
            runs.append(("PostgreSQL", await measure(model, url, 4096, count)))
        for name, result in runs:
            target = "p50<=2 p99<=10" if name == "SQLite" else "p50<=5"
            show(
                f"overhead {name}, {size:,} msgs, 4,096 window",
                f"p50 {result.p50_ms:.1f} p99 {result.p99_ms:.0f} ms, CPU {result.cpu_ms:.1f}",
                target,
                what,
            )
            show(
                f"database work {name}, {size:,} msgs",
                f"{result.statements:.1f} SQL, {result.checkouts:.1f} co",
                "<=6 SQL",
                "per reply (whole hot path incl. storing both messages), pool checkouts",
            )
            if result.failures:
                show("  failed replies", str(result.failures), "0", "")
    big = sizes[-1]
    async with sqlite_copy(big) as url:
        result = await measure(model, url, 128_000, max(count // 4, 20), warmup=3)
    show(
        f"overhead SQLite, {big:,} msgs, 128k window",
        f"p50 {result.p50_ms:.1f} ms, CPU {result.cpu_ms:.1f}",
        "p50<=25",
        what.replace(f"; {count} messages", f"; {max(count // 4, 20)} messages"),
    )


def _workers(model: str, database: str, processes: int, count: int, rounds: int) -> dict[str, Any]:
    share = count // processes
    children = [
        subprocess.Popen(
            [*_LOAD, "throughput", database, model, str(i * share), str(share), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    results = [json.loads(child.communicate()[0]) for child in children]
    messages = sum(r["messages"] for r in results)
    return {
        "rate": messages / max(r["seconds"] for r in results),
        "cpu_ms": sum(r["cpu_seconds"] for r in results) * 1000 / messages,
        "failed": sum(r["failed"] for r in results),
        "step": max(r["step_ms"] for r in results),
        "lateness": max(r["lateness_ms"] for r in results),
        "what": max(results, key=lambda r: r["step_ms"])["step"],
    }


async def throughput(model: str, full: bool) -> None:
    rounds = 5 if full else 2
    what = f"1,000 conversations at once, {rounds} messages each after a first (untimed) one"
    with tempfile.TemporaryDirectory() as tmp:
        result = await asyncio.to_thread(
            _workers, model, f"sqlite+aiosqlite:///{tmp}/load.db", 1, 1000, rounds
        )
    show("throughput SQLite, 1 process", f"{result['rate']:.0f} msg/s", ">=500", what)
    show(
        "  CPU per message in that run",
        f"{result['cpu_ms']:.1f} ms",
        "<=2 for 500/s",
        "the bot process's CPU time (all threads) / messages: load on other processes aside",
    )
    show("  failed replies", f"{result['failed']:.0f}", "0", "storage or model errors")
    show(
        "worst event-loop stall (one step)",
        f"{result['step']:.1f} ms",
        "a few ms",
        f"longest single callback/task step in that run, wall clock (at {result['what']})",
    )
    show(
        "worst 1 ms timer lateness",
        f"{result['lateness']:.0f} ms",
        "",
        "queueing behind all ready steps at that load (not one blocking step)",
    )
    if full and await postgres.available():
        rates = []
        for processes in (1, 2):
            url = await postgres.fresh("parley_bench_load")
            result = await asyncio.to_thread(_workers, model, url, processes, 1000, rounds)
            rates.append(result["rate"])
            show(
                f"throughput PostgreSQL, {processes} process(es)",
                f"{result['rate']:.0f} msg/s",
                "",
                what,
            )
        show("PostgreSQL 2 processes / 1", f"{rates[1] / rates[0]:.2f}x", ">=1.6x", "")


PEER_MISSING = "LangChain is not installed: pip install -e '.[bench]'"


async def against_peer(model: str, full: bool) -> None:
    if importlib.util.find_spec("langchain_core") is None:
        show("prompt assembly vs trim_messages", "skipped", ">=50x at 10k", PEER_MISSING)
        return
    sizes = [1_000, 10_000, 100_000] if full else [1_000, 10_000]
    for size in sizes:
        async with (
            sqlite_copy(size) as url,
            open_parley(bench_settings(model, url, 4096)) as parley,
        ):
            ours = await peer.ours_ms(parley, 30)
            rows = await peer.history_rows(parley)
            theirs = await asyncio.to_thread(
                peer.langchain_ms, parley, rows, 3 if size > 10_000 else 10
            )
        show(
            f"prompt assembly vs trim_messages, {size:,}",
            f"{ours:.2f} vs {theirs:.1f} ms = {theirs / ours:.0f}x",
            ">=50x at 10k",
            "median; ours: summary+recall+window from SQLite; theirs: in-memory list, tiktoken",
        )


async def _create(database: str) -> None:
    async with migrated_engine(database):
        pass


def footprint(model: str, full: bool) -> None:
    count = 10_000 if full else 2_000
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite+aiosqlite:///{tmp}/f.db"
        # Created beforehand, as `parley db upgrade` does: a bot usually starts on a current
        # schema (a migration loads alembic, which then stays resident).
        asyncio.run(_create(database))
        output = subprocess.run(
            [*_LOAD, "footprint", database, model, str(count)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = json.loads(output)
    show(
        f"resident memory after {count:,} conversations",
        f"{result['rss_mb']:.0f} MB (peak {result['peak_mb']:.0f})",
        "<=160 MB at 10k",
        "VmRSS of the bot process after each conversation got a reply; search, embeddings off; "
        "schema created before; "
        f"{result['start_mb']:.0f} MB at start",
    )


def import_figures(full: bool) -> None:
    size = 1_000_000 if full else 100_000
    run = importing.run_import(size)
    show(
        f"parley memory import, {size:,} messages",
        f"{run.per_second:,.0f} msg/s, {run.peak_mb:.0f} MB",
        ">=100k msg/s, <=300 MB",
        f"the whole command (start-up included); peak RSS; {run.cpu_seconds:.1f} s CPU"
        + ("" if run.ok else " - FAILED"),
    )


async def main(args: argparse.Namespace) -> None:
    chosen = args.only.split(",") if args.only else SECTIONS
    with instant_model() as model:
        if "overhead" in chosen:
            await overhead(model, args.full, args.messages)
        if "throughput" in chosen:
            await throughput(model, args.full)
        if "peer" in chosen:
            await against_peer(model, args.full)
        if "footprint" in chosen:
            await asyncio.to_thread(footprint, model, args.full)
    if "import" in chosen:
        await asyncio.to_thread(import_figures, args.full)
    if "pipeline" in chosen:
        await pipeline.pipeline(show, args.full)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Parley's benchmarks (issue 14's figures).")
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--messages", type=int, default=100, help="messages per overhead figure")
    started = time.perf_counter()
    asyncio.run(main(parser.parse_args()))
    print(f"({time.perf_counter() - started:.0f} s)")
