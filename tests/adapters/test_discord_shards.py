"""Discord shards: the settings that split them (PARLEY_DISCORD_SHARD_COUNT / _IDS), one process
running several shards against the fake gateway, and two real `parley run` processes on one
PostgreSQL database, each running one shard: every server is answered once, by the process that
owns its shard, and DMs (shard 0) once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from adapters.discord.client import DiscordAdapter, ShardedParleyClient, make_client
from adapters.discord.settings import DiscordSettings
from adapters.discord.shards import IdentifyPacer, shard_of
from bot.doctor import diagnose
from bot.runtime import open_parley
from bot.settings import ConfigError, load_settings
from bot.texts import say
from memory.db import create_engine, migrated_engine
from memory.inflight import RepliesInFlight
from tests.adapters.test_discord import done
from tests.adapters.test_discord_shutdown import bot_env
from tests.conftest import SettingsFactory
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import API_PREFIX, FakeDiscord, RecordedMessage
from tests.fakes.model_server import FakeModel, Reply
from tests.process import parley_running, run_parley, terminate

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------------------- settings


def _discord_section(monkeypatch: pytest.MonkeyPatch, **env: str) -> DiscordSettings:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings().section(DiscordSettings)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"PARLEY_DISCORD_SHARD_IDS": "1"}, say("config.discord_shard_ids_alone")),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "2", "PARLEY_DISCORD_SHARD_IDS": "0,2"},
            "PARLEY_DISCORD_SHARD_IDS: shard 2 does not exist with PARLEY_DISCORD_SHARD_COUNT=2 "
            "(shard ids are 0 to 1).",
        ),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "2", "PARLEY_DISCORD_SHARD_IDS": "-1"},
            "PARLEY_DISCORD_SHARD_IDS: shard -1 does not exist with PARLEY_DISCORD_SHARD_COUNT=2 "
            "(shard ids are 0 to 1).",
        ),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "2", "PARLEY_DISCORD_SHARD_IDS": "one"},
            "PARLEY_DISCORD_SHARD_IDS: expected a whole number (got 'one')",
        ),
        (
            {"PARLEY_DISCORD_SHARD_COUNT": "0"},
            "PARLEY_DISCORD_SHARD_COUNT: must be at least 1 (got '0')",
        ),
    ],
)
def test_a_bad_shard_layout_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], error: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _discord_section(monkeypatch, **env)
    assert str(raised.value) == error


def test_shard_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    unsharded = _discord_section(monkeypatch)
    assert unsharded.shard_ids is None and unsharded.served_shards == (0,)  # as before
    assert _discord_section(monkeypatch, PARLEY_DISCORD_SHARD_COUNT="3").shard_ids == (0, 1, 2)
    picked = _discord_section(
        monkeypatch, PARLEY_DISCORD_SHARD_COUNT="4", PARLEY_DISCORD_SHARD_IDS="3, 1,1"
    )
    assert picked.shard_ids == (1, 3)


def test_korean_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_LOCALE", "ko")
    with pytest.raises(ConfigError, match="PARLEY_DISCORD_SHARD_COUNT가 없어요"):
        _discord_section(monkeypatch, PARLEY_DISCORD_SHARD_IDS="0")


def test_shard_of_follows_discords_rule() -> None:
    guild = (1234 << 22) + 99
    assert shard_of(guild, 2) == 0 and shard_of(guild + (1 << 22), 2) == 1
    assert shard_of(guild, None) == 0 and shard_of(None, 4) == 0  # unsharded; DMs


async def test_identifies_are_paced_by_bucket() -> None:
    pacer = IdentifyPacer(max_concurrency=2, window=0.3)
    loop = asyncio.get_running_loop()

    async def waited(shard: int) -> float:
        start = loop.time()
        await pacer.wait(shard)
        return loop.time() - start

    assert await waited(0) < 0.1 and await waited(1) < 0.1  # two buckets: at once
    assert await waited(2) >= 0.25  # bucket 0 again: after the window
    assert await waited(1) >= 0.25  # shard 1 identifying again waits a full window


# ---------------------------------------------------------------------------- one process


async def test_one_process_runs_two_shards(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """Both shards in one process, READY/GUILD_CREATE per shard, IDENTIFYs not 5 s apart when
    Discord's max_concurrency allows two at once; each server's mention answered."""
    async with FakeDiscord(shards=2, max_concurrency=2) as fake:
        other = fake.add_guild("Other", ["lobby"], shard=1, shard_count=2)
        settings = make_settings(
            discord_token="fake-token", discord_shard_count=2, stream_interval=0.2
        )
        async with open_parley(settings) as parley:
            client = make_client(
                parley, settings.section(DiscordSettings), guild_ready_timeout=0.05
            )
            assert isinstance(client, ShardedParleyClient)
            started = time.monotonic()
            async with fake.running(client, timeout=10):
                assert time.monotonic() - started < 4  # discord.py's default would wait 5 s
                assert [i["shard"] for i in fake.identifies] == [[0, 2], [1, 2]]
                assert client.served_shards == (0, 1)
                assert {g.id: g.shard_id for g in client.guilds} == {fake.guild_id: 0, other: 1}
                assert client.shard_for(other) == 1 and client.shard_for(None) == 0
                for name in ("general", "lobby"):
                    channel = fake.channel_id(name)
                    await fake.send_message(channel, f"hello {name}", mentions_bot=True)
                    reply = await fake.wait_for_message(channel, done)
                    assert reply.content == f"echo: [alice] hello {name}"


async def test_sharding_required_is_explained(make_settings: SettingsFactory) -> None:
    """Discord closes an unsharded connection with 4011 once a bot has too many servers: one
    line saying which settings to use, not a traceback; with the shards it asks for, it runs."""
    async with FakeDiscord(shards=2, required_shards=2) as fake:
        settings = make_settings(discord_token="fake-token")
        async with open_parley(settings) as parley:
            adapter = DiscordAdapter(settings.section(DiscordSettings))
            with pytest.raises(ConfigError) as raised:
                await asyncio.wait_for(adapter.run(parley), 10)
        assert str(raised.value) == say("discord.sharding_required")
        sharded = make_settings(discord_token="fake-token", discord_shard_count=2)
        async with open_parley(sharded) as parley:
            client = make_client(parley, sharded.section(DiscordSettings), guild_ready_timeout=0.05)
            async with fake.running(client, timeout=10):
                assert client.served_shards == (0, 1)


async def test_doctor_shows_the_layout(make_settings: SettingsFactory) -> None:
    async with FakeDiscord(shards=4, max_concurrency=2) as fake:
        settings = make_settings(
            discord_token="fake-token",
            discord_api_url=fake.base_url + API_PREFIX,
            discord_shard_count=4,
            discord_shard_ids="2,3",
        )
        shards = {c.name: c for c in await diagnose(settings)}["discord shards"]
        unsharded = make_settings(
            discord_token="fake-token", discord_api_url=fake.base_url + API_PREFIX
        )
        plain = {c.name: c for c in await diagnose(unsharded)}["discord shards"]
    assert shards.ok and shards.detail == say(
        "doctor.discord.shards", ids="2,3", total=4, count=4, concurrency=2
    )
    assert plain.ok and plain.detail == say("doctor.discord.unsharded", count=4)


# ---------------------------------------------------------------------------- two processes


def _asked(model: FakeModel) -> list[str]:
    """The latest user message of each chat request the model received."""
    return [str(body["messages"][-1]["content"]) for body in model.requests]


async def test_two_processes_each_answer_their_own_shard(postgres_url: str) -> None:
    """Each process has its own model endpoint (a per-process setting), so a reply and the
    request behind it show which process answered. Replies a crash cut off are mended once, by
    the process of their channel's shard; the slash commands are registered once."""
    async with (
        FakeDiscord(shards=2) as fake,
        FakeModel() as model_a,
        FakeModel() as model_b,
    ):
        model_a.default = lambda _body: Reply("answered by A")
        model_b.default = lambda _body: Reply("answered by B")
        channels = {  # channel → the shard of its server
            "general": 0,  # the fake's first guild is on shard 0 of 2
            **{f"{name}-chat": shard for name, shard in (("east", 1), ("north", 0), ("west", 1))},
        }
        for channel, shard in list(channels.items())[1:]:
            name = channel.removesuffix("-chat")
            fake.add_guild(name, [channel, f"{name}-old"], shard=shard, shard_count=2)

        def env(model: FakeModel, shard: str) -> dict[str, str]:
            return bot_env(
                fake,
                model,
                postgres_url,
                PARLEY_DISCORD_SHARD_COUNT="2",
                PARLEY_DISCORD_SHARD_IDS=shard,
                PARLEY_DISCORD_SYNC_COMMANDS="true",
            )

        upgraded = await run_parley("db", "upgrade", env=env(model_a, "0"))
        assert upgraded.code == 0, upgraded.stderr  # once, before the replicas start
        cut = [await _cut_reply(fake, postgres_url, f"{name}-old") for name in ("north", "east")]
        north, east = cut
        async with parley_running("run", env=env(model_b, "1")) as b:
            await _wait_for_shards(fake, [1], b)  # it mends before it connects
            assert east.edits and not north.edits  # shard 0's reply is not B's to mend
            async with parley_running("run", env=env(model_a, "0")) as a:
                await _wait_for_shards(fake, [0, 1], a, b)
                assert north.edits
                await _converse(fake, channels)
                await asyncio.sleep(1.0)  # time for a wrong second answer to show up
        _check_answers(fake, channels, model_a, model_b)
    assert [(r.content, len(r.edits)) for r in cut] == [(say("shutdown.cut"), 1)] * 2
    assert [sync.guild_id for sync in fake.command_syncs] == [None]  # by shard 0's process
    assert await _left_over(postgres_url) == []


async def _cut_reply(
    fake: FakeDiscord,
    url: str,
    channel: str,
    content: str = "half a reply▌",
    recorded: bool = True,
) -> RecordedMessage:
    """A reply a crash left half-shown in `channel`: posted, and still in flight in the
    database (`recorded`: with its message's id; else the crash came before the id was
    stored)."""
    channel_id = fake.channel_id(channel)
    async with migrated_engine(url) as engine:
        in_flight = RepliesInFlight(engine, "crashed")
        row = await in_flight.start("discord", str(channel_id), [])
        async with (
            aiohttp.ClientSession(headers={"Authorization": "Bot fake-token"}) as http,
            http.post(
                f"{fake.base_url}{API_PREFIX}/channels/{channel_id}/messages",
                json={"content": content},
            ) as response,
        ):
            assert response.status == 200
        if recorded:
            await in_flight.posted(row, [str(fake.messages[channel_id][-1].id)])
    return fake.messages[channel_id][-1]


async def test_a_placeholder_posted_just_before_a_crash_is_found_and_mended(
    fake_discord: FakeDiscord, fake_model: FakeModel, sqlite_url: str
) -> None:
    older = await _cut_reply(fake_discord, sqlite_url, "general", say("discord.placeholder"))
    unrecorded = await _cut_reply(
        fake_discord, sqlite_url, "general", say("discord.placeholder"), recorded=False
    )
    async with parley_running("run", env=bot_env(fake_discord, fake_model, sqlite_url)) as run:
        await fake_discord.wait_for(lambda: unrecorded.content == say("shutdown.cut"), 20)
        assert older.content == say("shutdown.cut")
        for _ in range(100):  # the rows go once each message is edited
            if not await _left_over(sqlite_url):
                break
            await asyncio.sleep(0.1)
        finished = await terminate(run)
    assert finished.code == 0, finished.stderr
    assert await _left_over(sqlite_url) == []


async def _left_over(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        return list(await RepliesInFlight(engine, "inspector").left_over("discord"))
    finally:
        await engine.dispose()


async def _wait_for_shards(fake: FakeDiscord, shards: list[int], *processes: Any) -> None:
    """Until exactly `shards` (of 2) have identified, each once."""

    def identified() -> bool:
        for process in processes:
            if process.returncode is not None:
                raise AssertionError(f"parley run exited with {process.returncode}")
        return len(fake.identifies) >= len(shards)

    await fake.wait_for(identified, timeout=40)
    assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(s, 2) for s in shards]


async def _converse(fake: FakeDiscord, channels: dict[str, int]) -> None:
    for channel in channels:
        await fake.send_message(fake.channel_id(channel), f"hi from {channel}", mentions_bot=True)
    dm = fake.dm_channel("bob")
    await fake.send_message(dm, "hi from a DM", author="bob")
    asked = await fake.send_interaction(
        "ask", {"question": "hi from a slash command"}, channel_id=fake.channel_id("west-chat")
    )
    for channel_id in [*(fake.channel_id(c) for c in channels), dm]:
        await fake.wait_for_message(channel_id, done, timeout=20)
    await fake.wait_for(lambda: asked.original and asked.original.edits, timeout=20)


def _check_answers(
    fake: FakeDiscord, channels: dict[str, int], model_a: FakeModel, model_b: FakeModel
) -> None:
    by_shard = {0: ("answered by A", model_a), 1: ("answered by B", model_b)}
    for channel, shard in channels.items():
        posts = fake.messages[fake.channel_id(channel)]
        text, model = by_shard[shard]
        assert [p.content for p in posts] == [text], channel  # once, by the shard's process
        assert sum(f"hi from {channel}" in asked for asked in _asked(model)) == 1
    dm_posts = fake.messages[fake.dm_channel("bob")]
    assert [p.content for p in dm_posts] == ["answered by A"]  # DMs: shard 0
    interaction = next(iter(fake.interactions.values()))
    assert interaction.original is not None
    assert interaction.original.content.endswith("answered by B")  # west: shard 1
    assert interaction.callback_type == 5 and not interaction.followups
    everything = _asked(model_a) + _asked(model_b)
    assert len(everything) == len(channels) + 2, everything  # nothing asked twice
    assert fake.unhandled == []
