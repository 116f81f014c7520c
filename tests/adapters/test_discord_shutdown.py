"""Shutdowns and crashes through the real Discord adapter: a real `parley run` process connected
to the fake Discord gets SIGTERM while a slow streamed reply is in flight. The connection stays
open until the reply's final edit has reached Discord, or the shutdown timeout ends the reply with
a notice edited into its message. Killed with SIGKILL instead, the half reply is edited into the
notice when Parley starts again."""

from __future__ import annotations

import asyncio

import pytest

from bot.texts import say
from memory.db import create_engine
from memory.inbound import InboundQueue
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import API_PREFIX, FakeDiscord, RecordedMessage
from tests.fakes.model_server import FakeModel, Hang, Reply
from tests.helpers import until
from tests.process import Finished, parley_env, parley_running, terminate

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(40)

ANSWER = "A slow answer, streamed in small pieces, that must arrive whole."


def bot_env(fake: FakeDiscord, model: FakeModel, sqlite_url: str, **env: str) -> dict[str, str]:
    """`parley run` with the Discord bot on the fake Discord."""
    return parley_env(
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY="sk-test",
        PARLEY_DATABASE_URL=sqlite_url,
        DISCORD_TOKEN="fake-token",
        PARLEY_DISCORD_API_URL=fake.base_url + API_PREFIX,
        PARLEY_DISCORD_GATEWAY_URL=fake.gateway_url,
        PARLEY_STREAM_INTERVAL="0.2",
        **env,
    )


async def sigterm_mid_reply(
    fake: FakeDiscord, model: FakeModel, sqlite_url: str, **env: str
) -> tuple[Finished, RecordedMessage]:
    """`parley run` answers a mention; SIGTERM once the placeholder is up and the model is
    streaming. Returns how the process ended and Parley's message as Discord has it now."""
    general = fake.channel_id("general")
    async with parley_running("run", env=bot_env(fake, model, sqlite_url, **env)) as process:
        await fake.wait_for(lambda: fake.identifies, timeout=20)
        await fake.send_message(general, "tell me slowly", mentions_bot=True)
        await fake.wait_for(lambda: fake.messages.get(general), timeout=20)  # the placeholder
        await until(lambda: model.requests, within=10)
        done = await terminate(process)
    reply = fake.last_message(general)
    assert reply is not None
    return done, reply


async def until_waiting(url: str) -> None:
    """Until a message is stored and waits for its turn."""
    engine = create_engine(url)
    try:
        queue = InboundQueue(engine, "inspector")
        async with asyncio.timeout(20):
            while not (await queue.counts()).get("pending"):  # noqa: ASYNC110 - in the database
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


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


async def test_a_reply_cut_by_a_crash_is_mended_and_all_answered_at_the_next_start(
    fake_discord: FakeDiscord, fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Reply(ANSWER * 20, chunk=4, chunk_delay=0.05))
    env = bot_env(fake_discord, fake_model, sqlite_url)
    general = fake_discord.channel_id("general")
    async with parley_running("run", env=env):  # killed with SIGKILL at the end
        await fake_discord.wait_for(lambda: fake_discord.identifies, timeout=20)
        await fake_discord.send_message(general, "tell me slowly", mentions_bot=True)
        # Streaming: shown with the cursor, far from finished.
        await fake_discord.wait_for_message(general, lambda m: m.content.endswith("▌"), 20)
        # A slash command, deferred and stored, waits behind it in the channel.
        asked = await fake_discord.send_interaction("ask", {"question": "and the weather?"})
        await until_waiting(sqlite_url)
        assert asked.callback_type == 5
    cut = fake_discord.last_message(general)
    assert cut is not None and cut.content.endswith("▌")

    async with parley_running("run", env=env) as restarted:
        await fake_discord.wait_for(lambda: cut.content == say("shutdown.cut"), timeout=20)
        # Stored, unanswered and younger than the resume window: answered anew, below the notice
        # (the fake model echoes it), once.
        again = await fake_discord.wait_for_message(
            general, lambda m: m.id != cut.id and m.content.startswith("echo:"), 30
        )
        # The slash command too, by this other process: in its deferred response (edited
        # through the token its route kept), not in the channel.
        await fake_discord.wait_for(
            lambda: asked.original is not None and "and the weather?" in asked.original.content,
            timeout=30,
        )
        done = await terminate(restarted)
    assert done.code == 0, done.stderr
    assert "tell me slowly" in again.content
    assert [m.id for m in fake_discord.messages[general]] == [cut.id, again.id]
    assert fake_discord.unhandled == []
