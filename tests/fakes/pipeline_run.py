"""A pipeline run under faults, shared by the fault tests and `bench/pipeline.py`: real
`parley run` processes in Slack HTTP mode against the fake Slack and the fake model in
fault-injecting mode, a workload of marked messages, one process killed with SIGKILL midway
(and started again, or left dead for the other to take over), then the invariants checked.

    async with FakeSlack() as fake, FakeModel() as model:
        figures = await run(Scenario(conversations=30, messages=10), fake, model, url, tmp)
        assert figures.problems == []
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.faulty_model import FaultPlan, FaultyModel
from tests.fakes.model_server import FakeModel
from tests.fakes.pipeline_check import (
    Figures,
    check_prompt,
    check_replies,
    check_stored,
    kind_of,
    replies_done,
    stored,
)
from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_traffic import Conversation, Sender, conversations
from tests.process import free_port

REPO = Path(__file__).resolve().parent.parent.parent
_OUR_VARS = ("PARLEY_", "OPENAI_", "DISCORD_", "SLACK_", "TAVILY_", "BRAVE_")
# Seconds the client waits for the model; a hung call waits longer.
REQUEST_TIMEOUT = 3.0
# Seconds between looks at the fake Slack while waiting for the last replies.
_POLL = 0.2


class ParleyProcess:
    """`parley run` in Slack HTTP mode on its own port; its output goes to `log`."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "SLACK_PORT": str(self.port)}
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self._output = self.log.open("ab")  # a restart appends
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._output,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def listening(self, within: float = 60.0) -> None:
        """Wait until the process accepts connections on its port."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"parley run exited early:\n{self.output()[-3000:]}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"parley run did not listen on {self.port}:\n{self.output()[-3000:]}")

    async def kill(self) -> None:
        """SIGKILL: a crash, no clean-up at all."""
        assert self.process is not None
        self.process.kill()
        await self._ended(10)

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM and the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self._ended(within)

    async def _ended(self, within: float) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), within)
        if self._output is not None:
            self._output.close()
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def environment(tmp: Path, **values: str) -> dict[str, str]:
    """This environment without any Parley/Slack/model setting of the developer's, importing
    this checkout, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUR_VARS)}
    env.update(
        PYTHONPATH=str(REPO),
        PARLEY_CONFIG=str(tmp / "absent.toml"),
        XDG_CONFIG_HOME=str(tmp / "xdg-config"),
        XDG_DATA_HOME=str(tmp / "xdg-data"),
    )
    env.update(values)
    return env


@dataclass
class Scenario:
    conversations: int
    messages: int  # per conversation
    processes: int = 1
    restart: bool = True  # the killed process starts again (else the others take over)
    seed: int = 12
    fault_rate: float = 0.1
    redeliver: float = 0.1
    gap: tuple[float, float] = (0.02, 0.25)  # seconds between a conversation's messages
    spread: float = 3.0  # the conversations begin within this many seconds
    kill_at: float | None = 0.5  # share of the messages acknowledged at the SIGKILL (None: none)
    replay: int = 10  # events acknowledged before the kill, sent again after it
    within: float = 60.0  # seconds for every reply after the last acknowledgement
    # One conversation in this many in Korean (0: none). Off by default: the first Korean
    # text loads its analyzer, which stalls the process for seconds (acks come late, model
    # calls in flight time out), so outcomes would no longer follow the fault plan alone.
    korean_every: int = 0
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    scenario: Scenario
    fake: FakeSlack
    database_url: str
    tmp: Path
    processes: list[ParleyProcess] = field(default_factory=list)
    talks: list[Conversation] = field(default_factory=list)

    def settings(self, fake_model: FakeModel) -> dict[str, str]:
        return environment(
            self.tmp,
            OPENAI_BASE_URL=fake_model.base_url,
            OPENAI_API_KEY="sk-test",
            PARLEY_DATABASE_URL=self.database_url,
            SLACK_BOT_TOKEN=self.fake.bot_token,
            SLACK_SIGNING_SECRET=self.fake.signing_secret,
            SLACK_API_URL=self.fake.base_url,
            PARLEY_SLACK_HOST="127.0.0.1",
            PARLEY_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
            PARLEY_MODEL_RETRIES="1",
            PARLEY_STREAM_INTERVAL="0.2",
            PARLEY_RESUME_WINDOW="600",
            **self.scenario.env,
        )

    def all_done(self) -> bool:
        return all(replies_done(self.fake, talk) for talk in self.talks)


async def _crash(run: Run, sender: Sender) -> None:
    """Kill process 0 once `kill_at` of the messages are acknowledged; start it again (or
    not); re-send events acknowledged before the kill."""
    scenario = run.scenario
    if scenario.kill_at is None:
        return
    total = scenario.conversations * scenario.messages
    await sender.acknowledged_at_least(total * scenario.kill_at)
    await run.processes[0].kill()
    # Half the newest (likely still being answered), half any acknowledged before.
    acked, half = sender.acknowledged_events, scenario.replay // 2
    older, newest = acked[: len(acked) - half], acked[len(acked) - half :]
    chosen = newest + random.Random(scenario.seed).sample(older, min(half, len(older)))
    if scenario.restart:
        await asyncio.sleep(0.5)
        await run.processes[0].start()
        await run.processes[0].listening()
    for sent in chosen:  # to the restarted process, or the other one
        sender.again(sent, 0 if scenario.restart else 1, 0.0)


async def run(
    scenario: Scenario, fake: FakeSlack, fake_model: FakeModel, database_url: str, tmp: Path
) -> Figures:
    """Run the scenario; the figures and the problems found (none, when the pipeline holds)."""
    plan = FaultPlan(scenario.seed, scenario.fault_rate, hang=REQUEST_TIMEOUT + 1.5)
    model = FaultyModel(fake_model, plan)
    talks = conversations(fake, scenario.conversations, scenario.korean_every)
    this = Run(scenario, fake, database_url, tmp, talks=talks)
    env = this.settings(fake_model)
    this.processes = [
        ParleyProcess(env, tmp / f"parley-{n}.log") for n in range(scenario.processes)
    ]
    for process in this.processes:
        await process.start()
    try:
        figures = await _drive(this)
        for process in this.processes:
            if process.running and await process.stop() != 0:
                figures.problems.append(f"parley run exited badly:\n{process.output()[-3000:]}")
    finally:
        for process in this.processes:
            if process.running:
                await process.kill()
    for call in model.calls:
        check_prompt(figures, call, plan)
    check_stored(figures, *await stored(database_url), this.talks)
    for talk in this.talks:
        check_replies(figures, fake, talk, plan)
    for process in this.processes:
        if "Traceback" in process.output():
            figures.problems.append(f"a traceback in {process.log.name}")
    return figures


async def _drive(this: Run) -> Figures:
    """Send the traffic, crash midway, wait for the replies; the run's duration."""
    scenario = this.scenario
    for process in this.processes:
        await process.listening()
    sender = Sender(this.fake, [p.url for p in this.processes], scenario.seed, scenario.redeliver)
    spread = random.Random(scenario.seed + 1)
    crash = asyncio.create_task(_crash(this, sender))
    await asyncio.gather(
        *(
            sender.converse(
                talk, scenario.messages, scenario.gap, spread.uniform(0, scenario.spread)
            )
            for talk in this.talks
        )
    )
    await asyncio.wait_for(crash, 120)  # reached unless events were refused
    await sender.settle()
    for _ in range(int(scenario.within / _POLL)):
        if this.all_done():
            break
        await asyncio.sleep(_POLL)
    await asyncio.sleep(1.0)  # a late second answer would show now
    shown = [  # replies, not the notices mending what a crash cut off
        m.edits[-1].at if m.edits else m.posted_at
        for m in this.fake.all_messages()
        if kind_of(m) != "restarted"
    ]
    figures = Figures(
        seconds=max(shown, default=sender.first_sent) - sender.first_sent,
        slowest_ack=sender.slowest_ack,
        posts=sender.outcomes,
    )
    if sender.refused:
        figures.problems.append(f"{sender.refused} events never acknowledged")
    for status, count in sender.outcomes.items():
        if status.isdigit() and status != "200":  # Slack would keep re-sending these
            figures.problems.append(f"{count} posts of events answered HTTP {status}")
    return figures


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the server of `admin_url` (an asyncpg SQLAlchemy
    URL), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
