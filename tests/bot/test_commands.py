"""The shared chat commands, through the core as every adapter uses them."""

from __future__ import annotations

from dataclasses import replace

from bot.core import Parley
from bot.messages import Command, Inbound, Outcome
from bot.texts import say
from tests.fakes.model_server import FakeModel
from tests.helpers import ALICE, BOB, KEY, ask, collect


async def test_help_lists_every_command(parley: Parley) -> None:
    final = await ask(parley, "/help")
    assert final.outcome is Outcome.COMMAND
    for spec in parley.commands.specs():
        assert spec.usage in final.text


async def test_reset_starts_afresh_without_deleting(parley: Parley, fake_model: FakeModel) -> None:
    await ask(parley, "my name is Alice")
    assert (await ask(parley, "/reset")).outcome is Outcome.COMMAND
    await ask(parley, "what is my name?")
    assert [m["content"] for m in fake_model.requests[-1]["messages"][1:]] == [
        "[Alice] what is my name?"
    ]
    stored = await parley.store.messages((await parley.store.conversation(KEY)).id)
    assert stored[0].content == "my name is Alice"  # still on disk


async def test_admin_only_commands_are_refused_to_others(parley: Parley) -> None:
    await ask(parley, "remember this")
    denied = await ask(parley, "/reset", author=BOB)
    assert denied.outcome is Outcome.DENIED and "admin" in denied.text.lower()
    persona = await ask(parley, "/persona set You are a pirate.", author=BOB)
    assert "admin" in persona.text.lower()
    assert (await parley.store.conversation(KEY)).persona is None
    usage = await parley.store.usage(await parley.store.conversation(KEY))
    assert usage.messages == 2


async def test_persona_set_show_clear(parley: Parley, fake_model: FakeModel) -> None:
    assert "default persona" in (await ask(parley, "/persona")).text
    await ask(parley, "/persona set You are a terse pirate.")
    assert "terse pirate" in (await ask(parley, "/persona")).text
    await ask(parley, "hello")
    assert fake_model.requests[-1]["messages"][0] == {
        "role": "system",
        "content": "You are a terse pirate.",
    }
    await ask(parley, "/persona clear")
    await ask(parley, "hello again")
    assert fake_model.requests[-1]["messages"][0]["content"] == parley.settings.system_prompt
    assert "Usage" in (await ask(parley, "/persona frobnicate")).text


async def test_persona_too_long_is_refused(parley: Parley) -> None:
    final = await ask(parley, "/persona set " + "very long persona " * 70_000)
    assert "shorten" in final.text
    assert (await parley.store.conversation(KEY)).persona is None


async def test_listen_is_the_channels_and_only_admins_switch_it(parley: Parley) -> None:
    thread = replace(KEY, thread="t1")
    assert (await ask(parley, "/listen")).text == say("listen.off")
    assert (await ask(parley, "/listen on", author=BOB)).text == say("admin_only", name="listen")
    assert not await parley.store.listening(KEY)
    # From a thread it switches the channel: every thread of it follows.
    assert (await ask(parley, "/listen ON", key=thread)).text == say("listen.on")
    assert await parley.store.listening(KEY)
    assert (await ask(parley, "/listen", author=BOB)).text == say("listen.on")
    assert (await ask(parley, "/listen maybe")).text == say("listen.usage")
    assert (await ask(parley, "/listen off")).text == say("listen.off")
    assert not await parley.store.listening(thread)


async def test_memory_reports_what_is_stored_and_fits(parley: Parley) -> None:
    for i in range(3):
        await ask(parley, f"message {i}")
    report = (await ask(parley, "/memory")).text
    assert "6 messages" in report and "128,000" in report
    assert "newest 6 messages" in report


async def test_native_slash_command_and_ask(parley: Parley, fake_model: FakeModel) -> None:
    events = await collect(parley, Inbound(KEY, ALICE, "", command=Command("ask", "2+2?")))
    assert events[-1].text == "echo: [Alice] 2+2?"
    assert fake_model.requests[-1]["messages"][-1]["content"] == "[Alice] 2+2?"
    unknown = await collect(parley, Inbound(KEY, ALICE, "", command=Command("nope")))
    assert "Unknown command" in unknown[-1].text


async def test_unknown_and_switched_off_commands_never_reach_the_model(
    parley: Parley, fake_model: FakeModel
) -> None:
    assert "Unknown command `/shrug`" in (await ask(parley, "/shrug whatever")).text
    assert "PARLEY_SEARCH_PROVIDER" in (await ask(parley, "/search cats")).text
    assert fake_model.requests == []
    await ask(parley, "/etc/hosts is a file")  # a path, not a command
    assert len(fake_model.requests) == 1
