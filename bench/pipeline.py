"""The durable pipeline under load and faults (issue 12's figures): real `parley run` processes
in Slack HTTP mode against the fake Slack, the fake model failing ~10% of its calls (429s,
500s, hung calls, streams without a finish, dropped connections), Slack's retries and
re-deliveries, and one process killed with SIGKILL midway and started again. One process on
SQLite, then two on PostgreSQL (events of a conversation alternating between them, retries to
the other one). The traffic and the checks are the fault tests' (tests/fakes/pipeline_run.py).

Messages per second: acknowledged messages / seconds from the first event posted until every
one was answered (or told its failure) — the crash and restart included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import postgres
from tests.fakes.model_server import FakeModel
from tests.fakes.pipeline_check import Figures
from tests.fakes.pipeline_run import Scenario, run, scratch_database
from tests.fakes.slack_server import FakeSlack

Show = Callable[[str, str, str, str], None]


async def _measure(scenario: Scenario, database_url: str | None) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/pipeline.db"
        async with FakeSlack() as fake, FakeModel() as model:
            return await run(scenario, fake, model, url, Path(tmp))


def _report(show: Show, name: str, scenario: Scenario, figures: Figures) -> None:
    show(
        f"pipeline {name}",
        f"{figures.acknowledged:,} ack, {figures.stored:,} stored",
        "all stored",
        f"{scenario.conversations} conversations x {scenario.messages} messages; "
        f"{scenario.fault_rate:.0%} model faults; SIGKILL at {scenario.kill_at or 0:.0%}",
    )
    show(
        "  answered / told a failure",
        f"{figures.answered:,} / {figures.told:,}",
        f"sum {figures.acknowledged:,}",
        "real answers; notices for the calls the fault plan fails for good",
    )
    show(
        "  lost / duplicated / out of order",
        f"{figures.lost} / {figures.duplicated} / {figures.out_of_order}",
        "0 / 0 / 0",
        f"also stuck placeholders {figures.stuck}, leaks {figures.leaked}; "
        f"{figures.mended} cut replies mended after the crash",
    )
    show(
        "  messages per second",
        f"{figures.per_second:.1f} msg/s",
        "",
        f"{figures.seconds:.0f} s from the first event to the last reply; "
        f"slowest ack {figures.slowest_ack:.2f} s",
    )
    for problem in figures.problems[:5]:
        print(f"    {problem}", flush=True)


async def pipeline(show: Show, full: bool) -> None:
    conversations = 500 if full else 200
    for processes in (1, 2):
        scenario = Scenario(
            conversations=conversations,
            messages=10,
            processes=processes,
            seed=processes,
            within=120.0,
        )
        if processes == 1:
            _report(show, "SQLite, 1 process", scenario, await _measure(scenario, None))
        elif await postgres.available():
            async with scratch_database(postgres.ADMIN_URL, "parley_bench_pipeline") as url:
                figures = await _measure(scenario, url)
            _report(show, "PostgreSQL, 2 processes", scenario, figures)
        else:
            print("pipeline PostgreSQL, 2 processes: skipped (no PostgreSQL server)", flush=True)
