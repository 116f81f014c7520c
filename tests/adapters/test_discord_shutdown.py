"""Graceful shutdown through the real Discord adapter: a real `parley run` process connected to
the fake Discord gets SIGTERM while a slow streamed reply is in flight. The connection stays open
until the reply's final edit has reached Discord, or the shutdown timeout ends the reply with a
notice edited into its message."""

from __future__ import annotations

import signal

import pytest

from bot.texts import say
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import API_PREFIX, FakeDiscord, RecordedMessage
from tests.fakes.model_server import FakeModel, Hang, Reply
from tests.helpers import until
from tests.process import Finished, finish, parley_env, start_parley

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(40)

ANSWER = "A slow answer, streamed in small pieces, that must arrive whole."


async def sigterm_mid_reply(
    fake: FakeDiscord, model: FakeModel, sqlite_url: str, **env: str
) -> tuple[Finished, RecordedMessage]:
    """`parley run` answers a mention; SIGTERM once the placeholder is up and the model is
    streaming. Returns how the process ended and Parley's message as Discord has it now."""
    process = await start_parley(
        "run",
        env=parley_env(
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY="sk-test",
            PARLEY_DATABASE_URL=sqlite_url,
            DISCORD_TOKEN="fake-token",
            PARLEY_DISCORD_API_URL=fake.base_url + API_PREFIX,
            PARLEY_DISCORD_GATEWAY_URL=fake.gateway_url,
            PARLEY_STREAM_INTERVAL="0.2",
            **env,
        ),
    )
    try:
        await fake.wait_for(lambda: fake.identifies, timeout=20)
        general = fake.channel_id("general")
        await fake.send_message(general, "tell me slowly", mentions_bot=True)
        await fake.wait_for(lambda: fake.messages.get(general), timeout=20)  # the placeholder
        await until(lambda: model.requests, within=10)
        process.send_signal(signal.SIGTERM)
        done = await finish(process, within=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    reply = fake.last_message(general)
    assert reply is not None
    return done, reply


async def test_sigterm_waits_for_the_final_edit(
    fake_discord: FakeDiscord, fake_model: FakeModel, sqlite_url: str
) -> None:
    # ~1.6 s of streaming: SIGTERM lands in the middle of it.
    fake_model.script(Reply(ANSWER, chunk=4, chunk_delay=0.1))
    done, reply = await sigterm_mid_reply(fake_discord, fake_model, sqlite_url)
    assert done.code == 0, done.stderr
    assert reply.content == ANSWER  # the final edit: whole, without the cursor
    assert len(reply.edits) >= 2  # it was streamed, not posted at the end


async def test_the_shutdown_timeout_edits_a_notice_into_the_reply(
    fake_discord: FakeDiscord, fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Hang(30))
    done, reply = await sigterm_mid_reply(
        fake_discord, fake_model, sqlite_url, PARLEY_SHUTDOWN_TIMEOUT="0.5"
    )
    assert done.code == 0, done.stderr
    assert "cancelled 1 replies" in done.stderr
    assert reply.content == say("shutdown.cut")  # not the placeholder left hanging
