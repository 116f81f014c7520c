"""Graceful shutdown: the core turns new messages away, lets replies in progress finish (or
cancels them after the grace period), background work is drained, and a real `parley chat`
process exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import pytest
from sqlalchemy import text

from bot.core import Parley
from bot.messages import Outcome
from bot.prompt import Prompt
from bot.runtime import open_parley
from memory.store import ConversationState
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel, Hang, Reply
from tests.helpers import KEY, ask, until
from tests.process import Finished, finish, parley_env, start_parley


class SlowListener:
    def __init__(self) -> None:
        self.finished = 0

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None:
        await asyncio.sleep(0.2)
        self.finished += 1


async def test_in_flight_reply_finishes_new_ones_are_turned_away(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    listener = SlowListener()
    async with open_parley(make_settings()) as parley:
        parley.listeners.append(listener)
        fake_model.script(Reply("the whole answer", delay=0.3))
        in_flight = asyncio.create_task(ask(parley, "first"))
        await until(lambda: fake_model.requests)
        closing = asyncio.create_task(parley.gate.close(5.0))
        await until(lambda: parley.gate.closing)

        turned_away = await ask(parley, "second")
        assert turned_away.outcome is Outcome.SHUTTING_DOWN and turned_away.failed
        assert not closing.done()

        assert (await in_flight).text == "the whole answer"
        assert await closing == 0
        assert len(fake_model.requests) == 1
    assert listener.finished == 1  # drained when the core closed


async def test_replies_still_running_after_the_grace_period_are_cancelled(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(Hang(30))
    in_flight = asyncio.create_task(ask(parley, "never answered"))
    await until(lambda: fake_model.requests)
    assert await parley.gate.close(0.2) == 1
    with pytest.raises(asyncio.CancelledError):
        await in_flight
    async with parley.store.engine.connect() as connection:
        roles = (await connection.execute(text("SELECT role FROM messages"))).scalars().all()
    assert roles == ["user"]  # no half-written reply


async def test_gate_close_with_nothing_in_flight_is_immediate(parley: Parley) -> None:
    assert await asyncio.wait_for(parley.gate.close(10), 1) == 0
    assert (await ask(parley, "hello", key=KEY)).outcome is Outcome.SHUTTING_DOWN


async def sigterm_during_reply(fake_model: FakeModel, sqlite_url: str, **env: str) -> Finished:
    """`parley chat` gets a message, then SIGTERM while the model is answering."""
    process = await start_parley(
        "chat",
        stdin=asyncio.subprocess.PIPE,
        env=parley_env(
            OPENAI_BASE_URL=fake_model.base_url,
            OPENAI_API_KEY="sk-test",
            PARLEY_DATABASE_URL=sqlite_url,
            **env,
        ),
    )
    assert process.stdin is not None
    process.stdin.write(b"hello\n")
    await process.stdin.drain()
    await until(lambda: fake_model.requests, within=20)
    process.send_signal(signal.SIGTERM)
    # stdin stays open: a read blocked on it must not keep the process alive.
    return await finish(process, within=5)


async def test_sigterm_lets_the_reply_finish_and_exits_zero(
    fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Reply("finished despite SIGTERM", delay=0.8))
    done = await sigterm_during_reply(fake_model, sqlite_url)
    assert done.code == 0, done.stderr
    assert "finished despite SIGTERM" in done.stdout


async def test_sigterm_cancels_a_hung_reply_after_the_timeout(
    fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Hang(30))
    done = await sigterm_during_reply(fake_model, sqlite_url, PARLEY_SHUTDOWN_TIMEOUT="0.5")
    assert done.code == 0, done.stderr
    assert "cancelled 1 replies" in done.stderr
