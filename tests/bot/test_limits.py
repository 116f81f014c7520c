"""Per-person limits and the per-process concurrency cap, through the real core, on SQLite and
PostgreSQL (two cores on one database stand in for two processes)."""

from __future__ import annotations

import asyncio
import re

from bot.core import Parley
from bot.messages import ConversationKey, Outcome
from bot.texts import use_locale
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel, Reply
from tests.helpers import ALICE, BOB, KEY, ask, mention, parley_on, through_pipeline


async def stored(parley: Parley, key: ConversationKey = KEY) -> list[str]:
    conversation = await parley.store.conversation(key)
    return [m.content for m in await parley.store.messages(conversation.id)]


async def test_messages_per_minute_refuse_without_a_model_call(
    make_settings: SettingsFactory, database_url: str, fake_model: FakeModel
) -> None:
    async with parley_on(make_settings, database_url, user_messages_per_minute=2) as parley:
        assert (await ask(parley, "one", BOB)).outcome is Outcome.OK
        assert (await ask(parley, "two", BOB)).outcome is Outcome.OK
        refused = await ask(parley, "three", BOB)
        other = await ask(parley, "mine", ALICE)  # limits are per person
        help_text = await ask(parley, "/help", BOB)  # commands never count
        history = await stored(parley)

    assert refused.outcome is Outcome.DENIED
    wait = re.search(r"write again in (\d+) s", refused.text)
    assert wait and 55 <= int(wait.group(1)) <= 60, refused.text
    assert other.outcome is Outcome.OK and help_text.outcome is Outcome.COMMAND
    assert len(fake_model.requests) == 3
    assert "three" not in "".join(history)  # a refused message is not kept either


async def test_admins_are_limited_unless_exempt(
    make_settings: SettingsFactory, sqlite_url: str
) -> None:
    async with parley_on(make_settings, sqlite_url, user_messages_per_minute=1) as parley:
        await ask(parley, "one", ALICE)
        assert (await ask(parley, "two", ALICE)).outcome is Outcome.DENIED
    async with parley_on(
        make_settings, sqlite_url, user_messages_per_minute=1, limits_exempt_admins=True
    ) as parley:
        assert (await ask(parley, "three", ALICE)).outcome is Outcome.OK
        await ask(parley, "one", BOB)
        assert (await ask(parley, "two", BOB)).outcome is Outcome.DENIED


async def test_tokens_per_day_tell_when_in_korean(
    make_settings: SettingsFactory, database_url: str, fake_model: FakeModel
) -> None:
    fake_model.usage = (900, 100)  # the endpoint's own figures count
    async with parley_on(
        make_settings, database_url, user_tokens_per_day=1000, locale="ko"
    ) as parley:
        first = await ask(parley, "안녕하세요", BOB)
        refused = await ask(parley, "또 질문", BOB)
        other = await ask(parley, "제 차례", ALICE)
    use_locale("en")

    assert first.outcome is Outcome.OK and other.outcome is Outcome.OK
    assert refused.outcome is Outcome.DENIED
    assert "토큰 1,000개를 다 썼어요" in refused.text and "00:00 UTC" in refused.text
    assert len(fake_model.requests) == 2


async def test_limits_hold_across_processes_sharing_the_database(
    make_settings: SettingsFactory, database_url: str, fake_model: FakeModel
) -> None:
    async with (
        parley_on(make_settings, database_url, user_messages_per_minute=3) as one,
        parley_on(make_settings, database_url, user_messages_per_minute=3) as two,
    ):
        if database_url.startswith("postgresql"):
            # At the same time, in different conversations: the database decides.
            keys = [ConversationKey("test", "w", f"c{n}") for n in range(8)]
            finals = await asyncio.gather(
                *(ask(core, "hi", BOB, key) for core, key in zip([one, two] * 4, keys, strict=True))
            )
        else:  # SQLite serves one process at a time: alternate
            finals = [await ask(core, "hi", BOB) for core in [one, two] * 4]
    assert sum(final.outcome is Outcome.OK for final in finals) == 3
    assert sum(final.outcome is Outcome.DENIED for final in finals) == 5
    assert len(fake_model.requests) == 3


async def test_concurrency_cap_queues_and_answers_everything_in_order(
    make_settings: SettingsFactory, sqlite_url: str, fake_model: FakeModel
) -> None:
    # Slow enough that requests overlap even on a loaded machine.
    fake_model.default = lambda body: Reply(f"re: {body['messages'][-1]['content']}", delay=0.4)
    async with parley_on(make_settings, sqlite_url) as uncapped:
        await asyncio.gather(
            *(ask(uncapped, "x", BOB, ConversationKey("test", "w", f"u{n}")) for n in range(3))
        )
    assert fake_model.max_in_flight == 3  # without the cap they overlap

    fake_model.max_in_flight = 0
    async with parley_on(make_settings, sqlite_url, max_concurrent_replies=2) as parley:
        elsewhere = [ConversationKey("test", "w", f"c{n}") for n in range(4)]
        finals = await through_pipeline(
            parley,
            [mention(f"m{n}", BOB) for n in range(4)]
            + [mention("hi", BOB, key) for key in elsewhere],
        )
        history = await stored(parley)
    assert all(final.outcome is Outcome.OK for final in finals)
    assert fake_model.max_in_flight == 2
    questions = [text for text in history if re.fullmatch(r"m\d", text)]
    assert questions == ["m0", "m1", "m2", "m3"]
