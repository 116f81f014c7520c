"""Issue 12's fault test: a real `parley run` (Slack HTTP mode, SQLite) answers a few hundred
messages across 30 conversations, threads and DMs, sent concurrently, while the fake model
fails ~10% of its calls (429s, 500s, hung calls, streams without a finish, connections dropped
before and during the answer), the process is killed with SIGKILL midway and started again,
and Slack re-delivers events it had already been told were received, some of them to the
restarted process. Afterwards every acknowledged message is stored once and answered once, in
order, every failure was told, and no conversation saw another's text
(tests/fakes/pipeline_check.py)."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModel
from tests.fakes.pipeline_run import Scenario, run
from tests.fakes.slack_fixtures import fake_slack  # noqa: F401
from tests.fakes.slack_server import FakeSlack

pytestmark = pytest.mark.timeout(150)


async def test_nothing_lost_or_repeated_under_faults_and_a_crash(
    fake_slack: FakeSlack, fake_model: FakeModel, sqlite_url: str, tmp_path: Path
) -> None:
    scenario = Scenario(conversations=30, messages=10, seed=12)
    figures = await run(scenario, fake_slack, fake_model, sqlite_url, tmp_path)

    assert figures.problems == [], "\n".join([str(figures), *figures.problems])
    assert figures.acknowledged == figures.stored == 300
    assert figures.answered + figures.told == 300
    assert figures.told > 0  # the plan's failures were met and told
    assert (figures.lost, figures.duplicated, figures.out_of_order) == (0, 0, 0)
