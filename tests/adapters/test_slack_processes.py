"""Issue 12's two-process test: two real `parley run` processes in Slack HTTP mode on one
PostgreSQL database serve the same workspace, as behind a load balancer: events of the same
conversations alternate between them, Slack's retries go to the other one, and one process is
killed with SIGKILL midway and not started again — the other takes over its claimed work once
the claims' lease runs out. The invariants are the fault test's (tests/fakes/pipeline_check.py):
every acknowledged message stored once and answered once, in order, failures told, no leaks."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModel
from tests.fakes.pipeline_run import Scenario, run, scratch_database
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.timeout(200)

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="two processes need PostgreSQL: set PARLEY_TEST_POSTGRES_URL "
    "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)",
)
async def test_two_processes_share_the_work_and_survive_one_killed(
    fake_slack: FakeSlack, fake_model: FakeModel, tmp_path: Path
) -> None:
    assert POSTGRES_URL
    # The survivor takes the dead one's claimed messages over once their lease (30 s,
    # memory.inbound) runs out: the run lasts about that long.
    # A loaded machine slows the traffic: the wait for the last replies covers a lease and more.
    scenario = Scenario(
        conversations=12, messages=8, processes=2, restart=False, seed=21, within=90.0
    )
    async with scratch_database(POSTGRES_URL, "parley_mp") as url:
        figures = await run(scenario, fake_slack, fake_model, url, tmp_path)

    assert figures.problems == [], "\n".join([str(figures), *figures.problems])
    assert figures.acknowledged == figures.stored == 96
    assert figures.answered + figures.told == 96
    assert figures.told > 0
    assert (figures.lost, figures.duplicated, figures.out_of_order) == (0, 0, 0)
