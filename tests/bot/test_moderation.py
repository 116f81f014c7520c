"""Moderation: the blocked-word list and the endpoint's /v1/moderations, for messages and
replies; a refused message reaches no chat call and is not kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.messages import Delta, Final, Inbound, Outcome
from bot.moderation import BlockedWords
from bot.runtime import open_parley
from bot.settings import ConfigError
from bot.texts import say
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.helpers import BOB, KEY, ask, collect, parley_on


def test_blocked_words_match_whole_english_words_and_korean_inside_words() -> None:
    words = BlockedWords(
        ["Darn", "  ", "바보", "go away now", "\uff46\uff4f\uff4f"]
    )  # full-width "foo"
    assert words.count == 4
    assert words.found("Well, DARN it!")
    assert not words.found("darning socks")  # whole words only for English-like entries
    assert words.found("너 바보야?")  # a particle attached to the word
    assert words.found("please  GO\nAWAY now")  # phrases, any spacing
    assert words.found("FOO bar")  # full-width entries fold to ASCII
    assert not words.found("바나나")
    assert not BlockedWords([]).found("anything")


async def test_blocked_message_is_refused_without_a_chat_call(
    make_settings: SettingsFactory, database_url: str, fake_model: FakeModel, tmp_path: Path
) -> None:
    listed = tmp_path / "words.txt"
    listed.write_text("# curse words\n바보\nDarn\n", encoding="utf-8")
    async with parley_on(make_settings, database_url, blocked_words=listed) as parley:
        refused = await ask(parley, "이 바보야", BOB)
        english = await ask(parley, "DARN this", BOB)
        fine = await ask(parley, "hello", BOB)
        conversation = await parley.store.conversation(KEY)
        kept = [m.content for m in await parley.store.messages(conversation.id)]
    assert refused == Final(say("moderation.blocked"), Outcome.DENIED)
    assert english.outcome is Outcome.DENIED
    assert fine.outcome is Outcome.OK
    assert len(fake_model.requests) == 1
    assert kept == ["hello", fine.text]


async def test_endpoint_flags_messages_and_fails_open_or_closed(
    make_settings: SettingsFactory,
    sqlite_url: str,
    fake_model: FakeModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    fake_model.flagged_words = {"punch"}
    async with parley_on(make_settings, sqlite_url, moderation="endpoint") as parley:
        flagged = await ask(parley, "I will punch you", BOB)
        fine = await ask(parley, "good morning", BOB)
        fake_model.moderation_failure = Fail(500, "down")
        open_ = await ask(parley, "still there?", BOB)
    assert flagged.outcome is Outcome.DENIED and "(harassment)" in flagged.text
    assert fine.outcome is Outcome.OK and open_.outcome is Outcome.OK
    assert [body["input"] for body in fake_model.moderation_requests] == [
        "I will punch you",
        "good morning",
        "still there?",
    ]
    assert len(fake_model.requests) == 2
    assert "fail open" in caplog.text

    async with parley_on(
        make_settings, sqlite_url, moderation="endpoint", moderation_fail="closed"
    ) as parley:
        closed = await ask(parley, "anyone?", BOB)
    assert closed == Final(say("moderation.unavailable"), Outcome.DENIED)
    assert len(fake_model.requests) == 2
    assert "fail closed" in caplog.text


async def test_flagged_reply_is_withheld_and_not_streamed(
    make_settings: SettingsFactory, sqlite_url: str, fake_model: FakeModel
) -> None:
    fake_model.flagged_words = {"punch"}
    fake_model.script(Reply("I would punch them."), Reply("Let's talk it over."))
    async with parley_on(
        make_settings, sqlite_url, moderation="endpoint", moderate_replies=True
    ) as parley:
        withheld = await collect(parley, Inbound(KEY, BOB, "what would you do?"))
        shown = await collect(parley, Inbound(KEY, BOB, "and now?"))
        conversation = await parley.store.conversation(KEY)
        kept = [m.content for m in await parley.store.messages(conversation.id)]
    assert withheld == [
        Final(say("moderation.reply.flagged", categories="harassment"), Outcome.DENIED)
    ]
    assert not any(isinstance(event, Delta) for event in shown)
    assert shown[-1] == Final("Let's talk it over.")
    assert "I would punch them." not in kept and "Let's talk it over." in kept


async def test_an_unreadable_word_list_is_a_configuration_error(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="PARLEY_BLOCKED_WORDS: cannot read"):
        async with open_parley(make_settings(blocked_words=tmp_path / "missing.txt")):
            pass
