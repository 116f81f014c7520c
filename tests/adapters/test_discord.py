"""Discord end to end: the real discord.py client against the fake Discord, answering through
the real openai client against the fake model, history in SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.discord.client import DiscordAdapter, ParleyClient, sync_commands
from adapters.discord.settings import DiscordSettings
from bot.core import Parley
from bot.messages import ConversationKey
from bot.plugins import configured_adapters
from bot.runtime import open_parley
from bot.settings import ConfigError, Settings
from bot.splitting import open_fence
from bot.texts import say
from tests.conftest import SettingsFactory
from tests.fakes.discord_fixtures import fake_discord
from tests.fakes.discord_server import FakeDiscord, FakeFile, RecordedMessage
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.fakes.search_server import FakeSearch

__all__ = ["fake_discord"]  # the fixture is used by name; keep the import

pytestmark = pytest.mark.timeout(15)

FAST = 0.2  # stream interval where timing is not the point


@asynccontextmanager
async def bot(
    fake: FakeDiscord, settings: Settings, sync: bool = False
) -> AsyncIterator[ParleyClient]:
    async with open_parley(settings) as parley:
        client = ParleyClient(
            parley, settings.section(DiscordSettings), sync_commands=sync, guild_ready_timeout=0.05
        )
        async with fake.running(client):
            yield client


def done(message: RecordedMessage) -> bool:
    """The reply is finished: the placeholder was edited and no cursor is left."""
    return bool(message.edits) and not message.content.endswith("▌")


async def stored(parley: Parley, key: ConversationKey) -> list[tuple[str, str]]:
    conversation = await parley.store.conversation(key)
    return [(m.role, m.content) for m in await parley.store.messages(conversation.id)]


def guild_key(fake: FakeDiscord, channel: str, thread: str = "") -> ConversationKey:
    return ConversationKey("discord", str(fake.guild_id), str(fake.channel_id(channel)), thread)


def last_prompt(model: FakeModel) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = model.requests[-1]["messages"]
    return messages


async def test_mention_is_answered_with_a_streamed_reply(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    answer = "Streaming works: " + " ".join(f"word{i}" for i in range(40))
    fake_model.script(Reply(answer, chunk=12, chunk_delay=0.12))  # ~3 s of streaming
    async with bot(fake, make_settings(stream_interval=1.0)) as client:
        asked = await fake.send_message(
            general, "tell me something", author="bob", mentions_bot=True
        )
        reply = await fake.wait_for_message(general, done, timeout=8)
        assert reply.content == answer
        assert reply.reference_id == asked
        assert reply.allowed_mentions is not None and reply.allowed_mentions["parse"] == []
        assert len(reply.edits) >= 3
        assert reply.min_edit_interval >= 0.9
        assert any(t.channel_id == general for t in fake.typing_calls)
        assert len(fake.messages[general]) == 1
        assert last_prompt(fake_model)[-1]["content"] == "[bob] tell me something"
        assert await stored(client.parley, guild_key(fake, "general")) == [
            ("user", "tell me something"),
            ("assistant", answer),
        ]
    assert fake.unhandled == []


async def test_thread_continues_without_mention_even_after_restart(
    fake_discord: FakeDiscord, make_settings: SettingsFactory
) -> None:
    fake, settings = fake_discord, make_settings(stream_interval=FAST)
    thread = fake.channel_id("existing-thread")
    async with bot(fake, settings):
        other = await fake.create_thread("not-ours", owner="bob")
        await fake.send_message(thread, "first", mentions_bot=True)
        await fake.wait_for_message(thread, done)
        await fake.send_message(thread, "second, no mention")
        await fake.wait_for(
            lambda: len(fake.messages[thread]) == 2 and done(fake.messages[thread][1])
        )
        assert fake.messages[thread][1].content == "echo: [alice] second, no mention"
    async with bot(fake, settings) as client:  # participation comes from the store
        await fake.send_message(other, "not for the bot")
        await fake.send_message(thread, "third")
        await fake.wait_for(
            lambda: len(fake.messages[thread]) == 3 and done(fake.messages[thread][2])
        )
        key = guild_key(fake, "general", str(thread))
        assert [text for _, text in await stored(client.parley, key)][-2:] == [
            "third",
            "echo: [alice] third",
        ]
    assert fake.messages[other] == []


async def test_dm_and_reply_to_the_bot_are_answered(
    fake_discord: FakeDiscord, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    async with bot(fake, make_settings(stream_interval=FAST)) as client:
        dm = fake.dm_channel("bob")
        await fake.send_message(dm, "hello in private", author="bob")
        reply = await fake.wait_for_message(dm, done)
        assert reply.content == "echo: [bob] hello in private"
        assert await stored(client.parley, ConversationKey("discord", f"dm-{dm}", str(dm))) == [
            ("user", "hello in private"),
            ("assistant", reply.content),
        ]
        memory = await fake.send_interaction("memory", channel_id=dm, user="bob")
        await fake.wait_for(lambda: memory.original is not None and done(memory.original))
        assert memory.original is not None
        assert memory.original.content.startswith("Stored since the last reset: 2 messages")

        await fake.send_message(general, "hi", mentions_bot=True)
        first = await fake.wait_for_message(general, done)
        await fake.send_message(general, "and more", reference_message_id=first.id)
        await fake.wait_for(
            lambda: len(fake.messages[general]) == 2 and done(fake.messages[general][1])
        )
        assert fake.messages[general][1].content == "echo: [alice] and more"


async def test_slash_ask_reset_and_sync(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    async with bot(fake, make_settings(stream_interval=FAST), sync=True) as client:
        assert len(fake.command_syncs) == 1 and fake.command_syncs[0].guild_id is None
        commands = {c["name"]: c for c in fake.command_syncs[0].commands}
        assert set(commands) >= {"ask", "reset", "memory", "persona", "help"}
        assert commands["ask"]["options"][0]["name"] == "question"
        assert commands["ask"]["options"][0]["required"] is True

        fake_model.script(Reply("Paris.", delay=0.3))
        ask = await fake.send_interaction("ask", {"question": "capital of France?"})
        await fake.wait_for(lambda: ask.original is not None and done(ask.original))
        assert ask.callback_type == 5 and ask.ack_delay is not None and ask.ack_delay < 3
        assert ask.original is not None and ask.original.content == "Paris."
        assert last_prompt(fake_model)[-1]["content"] == "[alice] capital of France?"

        denied = await fake.send_interaction("reset", user="bob")
        await fake.wait_for(lambda: denied.original is not None and done(denied.original))
        assert denied.original is not None
        assert denied.original.content == say("admin_only", name="reset")

        reset = await fake.send_interaction("reset", user="alice")
        await fake.wait_for(lambda: reset.original is not None and done(reset.original))
        assert reset.original is not None and reset.original.content == say("reset.done")
        conversation = await client.parley.store.conversation(guild_key(fake, "general"))
        assert (await client.parley.store.usage(conversation)).messages == 0
        assert general == ask.channel_id
    assert len(fake.command_syncs) == 1  # not again on reconnect or restart


async def test_search_becomes_a_slash_command_when_configured(
    fake_discord: FakeDiscord,
    fake_search: FakeSearch,
    fake_model: FakeModel,
    make_settings: SettingsFactory,
) -> None:
    fake = fake_discord
    settings = make_settings(
        stream_interval=FAST, search_provider="searxng", search_url=fake_search.base_url
    )
    async with bot(fake, settings, sync=True):
        commands = {c["name"]: c for c in fake.command_syncs[0].commands}
        assert commands["search"]["options"][0]["name"] == "query"
        search = await fake.send_interaction("search", {"query": "parley release date"})
        await fake.wait_for(lambda: search.original is not None and done(search.original))
        assert search.original is not None
        assert "parley release date" in search.original.content
        assert "parley release date" in str(last_prompt(fake_model))


async def test_sync_command_registers_once(
    fake_discord: FakeDiscord, make_settings: SettingsFactory
) -> None:
    settings = make_settings(discord_token="fake-token", discord_sync_commands=True)
    async with open_parley(settings) as parley:
        names = await sync_commands(parley, settings.section(DiscordSettings))
    assert "ask" in names and len(fake_discord.command_syncs) == 1
    assert [a.name for a in configured_adapters(settings)] == ["discord"]


async def test_long_reply_is_split_with_code_block_intact(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    code = "\n".join(f"    total += compute(item_{i}, factor={i})  # step {i}" for i in range(90))
    answer = (
        "Here is the script:\n\n```python\ndef run():\n"
        + code
        + "\n```\n\nDone.\n\n"
        + "More notes.\n\n" * 40
        + "The end."
    )
    assert len(answer) > 5000
    fake_model.script(Reply(answer, chunk=400))
    async with bot(fake, make_settings(stream_interval=FAST)) as client:
        await fake.send_message(general, "write it", mentions_bot=True)
        await fake.wait_for(
            lambda: (
                len(fake.messages[general]) >= 3
                and fake.messages[general][-1].content.endswith("The end.")
            )
        )
        posts = [m.content for m in fake.messages[general] if not m.deleted]
        assert all(0 < len(p) <= 2000 for p in posts)
        assert all(open_fence(p) is None for p in posts)  # every chunk's fences are balanced
        assert posts[1].startswith("```python\n")
        assert "".join(posts).count("total +=") == 90
        assert fake.messages[general][0].reference_id is not None
        assert all(m.reference_id is None for m in fake.messages[general][1:])
        assert (await stored(client.parley, guild_key(fake, "general")))[-1] == (
            "assistant",
            answer,
        )


async def test_channels_do_not_share_history_but_chatter_is_caught_up(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake = fake_discord
    general, random = fake.channel_id("general"), fake.channel_id("random")
    async with bot(fake, make_settings(stream_interval=FAST)):
        await fake.send_message(general, "the launch code is 1234", author="bob")
        await fake.send_message(general, "what did bob say?", mentions_bot=True)
        await fake.wait_for_message(general, done)
        contents = [m["content"] for m in last_prompt(fake_model)[1:]]
        assert contents == ["[bob] the launch code is 1234", "[alice] what did bob say?"]

        await fake.send_message(random, "what is the launch code?", mentions_bot=True)
        await fake.wait_for_message(random, done)
        assert "1234" not in str(last_prompt(fake_model))
        assert fake.messages[general][0].content == "echo: [alice] what did bob say?"


async def test_bots_and_people_outside_the_allow_list_are_ignored(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    fake.add_user("otherbot", bot=True)
    carol = fake.add_user("carol", roles=("member",))
    settings = make_settings(
        stream_interval=FAST, discord_roles={"Admin"}, discord_users={str(carol.id)}
    )
    async with bot(fake, settings):
        await fake.send_message(general, "from a bot", author="otherbot", mentions_bot=True)
        await fake.send_message(general, "from bob", author="bob", mentions_bot=True)
        denied = await fake.send_interaction("ask", {"question": "hi"}, user="bob")
        await fake.send_message(general, "from carol", author="carol", mentions_bot=True)
        await fake.send_message(general, "from alice", author="alice", mentions_bot=True)
        await fake.wait_for(
            lambda: (
                len(fake.messages[general]) == 2 and all(done(m) for m in fake.messages[general])
            )
        )
        assert sorted(m.content for m in fake.messages[general]) == [
            "echo: [alice] from alice",
            "echo: [carol] from carol",
        ]
        assert denied.callback_body is not None
        assert denied.callback_body["data"]["content"] == say("not_allowed")
        assert all("bob" not in str(r["messages"]) for r in fake_model.requests)


async def test_answer_everything_channel(
    fake_discord: FakeDiscord, make_settings: SettingsFactory
) -> None:
    fake, help_channel = fake_discord, fake_discord.channel_id("help")
    settings = make_settings(stream_interval=FAST, discord_answer_all_channels={str(help_channel)})
    async with bot(fake, settings):
        await fake.send_message(fake.channel_id("general"), "not answered")
        await fake.send_message(help_channel, "no mention needed", author="bob")
        reply = await fake.wait_for_message(help_channel, done)
        assert reply.content == "echo: [bob] no mention needed"
    assert fake.messages[fake.channel_id("general")] == []


async def listen(
    fake: FakeDiscord, choice: str, user: str = "alice", channel: str = "general"
) -> str:
    """`/listen <choice>` as a slash command; its answer."""
    command = await fake.send_interaction(
        "listen", {"text": choice}, user=user, channel_id=fake.channel_id(channel)
    )
    await fake.wait_for(lambda: command.original is not None and done(command.original))
    assert command.original is not None
    return command.original.content


async def test_listen_switches_a_channel_to_answer_everything_across_restarts(
    fake_discord: FakeDiscord, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    settings = make_settings(stream_interval=FAST)

    def answered(count: int) -> bool:
        return len(fake.messages[general]) == count and all(map(done, fake.messages[general]))

    async with bot(fake, settings):
        assert await listen(fake, "on", user="bob") == say("admin_only", name="listen")
        assert await listen(fake, "on") == say("listen.on")
        await fake.send_message(general, "no mention needed", author="bob")
        await fake.wait_for(lambda: answered(1))
    async with bot(fake, settings):  # a new Parley on the same database file
        await fake.send_message(general, "still listening?", author="bob")
        await fake.wait_for(lambda: answered(2))
        # In a thread, /listen is its parent channel's.
        assert await listen(fake, "off", channel="existing-thread") == say("listen.off")
        await fake.send_message(general, "not answered", author="bob")
        await fake.send_message(general, "but this is", author="bob", mentions_bot=True)
        await fake.wait_for(lambda: answered(3))
        await asyncio.sleep(0.2)  # time enough for a wrong answer to "not answered" to start
    assert [m.content for m in fake.messages[general]] == [
        "echo: [bob] no mention needed",
        "echo: [bob] still listening?",
        "echo: [bob] but this is",
    ]


async def test_model_failure_is_shown_as_the_error(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    fake_model.script(Fail(401, "bad key"))
    async with bot(fake, make_settings(stream_interval=FAST)):
        await fake.send_message(general, "hello", mentions_bot=True)
        reply = await fake.wait_for_message(general, lambda m: m.content != "…")
        assert reply.content == say("error.auth")
        assert [e.body["content"] for e in reply.edits] == [say("error.auth")]


async def test_attachments_text_read_and_image_skipped_or_seen(
    fake_discord: FakeDiscord, fake_model: FakeModel, make_settings: SettingsFactory
) -> None:
    fake, general = fake_discord, fake_discord.channel_id("general")
    image = FakeFile("cat.png", b"\x89PNG\r\n\x1a\nfake", "image/png")
    async with bot(fake, make_settings(stream_interval=FAST)):
        await fake.send_message(
            general,
            "summarise",
            mentions_bot=True,
            attachments=[FakeFile("notes.txt", "caf\xe9 notes".encode())],
        )
        await fake.wait_for_message(general, done)
        assert "[file notes.txt]\ncafé notes" in last_prompt(fake_model)[-1]["content"]

        await fake.send_message(general, "look", mentions_bot=True, attachments=[image])
        await fake.wait_for(
            lambda: len(fake.messages[general]) == 2 and done(fake.messages[general][1])
        )
        notice = say("attach.no_vision", names="cat.png")
        assert fake.messages[general][1].content.startswith(f"_{notice}_")
        assert isinstance(last_prompt(fake_model)[-1]["content"], str)

    async with bot(fake, make_settings(stream_interval=FAST, attachment_max_bytes=100)):
        requests = len(fake_model.requests)
        await fake.send_message(
            general, "", mentions_bot=True, attachments=[FakeFile("big.log", "x" * 200)]
        )
        await fake.wait_for(
            lambda: len(fake.messages[general]) == 3 and fake.messages[general][2].edits
        )
        assert (
            fake.messages[general][2].content
            == "_" + say("attach.too_large", names="big.log", limit="100 bytes") + "_"
        )
        assert len(fake_model.requests) == requests  # nothing for the model to read

    async with bot(fake, make_settings(stream_interval=FAST, vision=True)):
        await fake.send_message(general, "and now?", mentions_bot=True, attachments=[image])
        await fake.wait_for(
            lambda: len(fake.messages[general]) == 4 and done(fake.messages[general][3])
        )
        parts = last_prompt(fake_model)[-1]["content"]
        assert parts[0]["type"] == "text" and parts[1]["type"] == "image_url"
        assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_missing_message_content_intent_is_explained(make_settings: SettingsFactory) -> None:
    async with (
        FakeDiscord(message_content_enabled=False) as fake,
        open_parley(make_settings(discord_token="fake-token")) as parley,
    ):
        adapter = DiscordAdapter(parley.settings.section(DiscordSettings))
        with pytest.raises(ConfigError, match="Message Content Intent"):
            await asyncio.wait_for(adapter.run(parley), 10)
    assert fake.identifies
