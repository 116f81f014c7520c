"""The pipeline through the real core: messages stored by a process that stopped before answering
them are answered by the next one if young enough, else marked missed; the neutral message
survives the trip through the database."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from sqlalchemy import update

from bot.messages import Author, ChannelKind, Command, ConversationKey, Facts, Inbound
from bot.policy import Verdict
from bot.queued import Route, from_data, to_data
from memory.tables import InboundItem
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.helpers import ALICE, KEY, Answers, mention, parley_on, settled, until


def test_a_stored_message_comes_back_as_it_was() -> None:
    message = Inbound(
        ConversationKey("discord", "g1", "c1", "t1"),
        Author("u1", "Ünï", is_admin=True, roles=frozenset({"r1", "mods"}), can_manage=True),
        '안녕하세요 "quoted"',
        message_id="123",
        command=Command("ask", "why?"),
        facts=Facts(kind=ChannelKind.PRIVATE, mentioned=True, reply_to_bot=True),
    )
    assert from_data(to_data(message)) == message


async def test_a_restart_answers_young_messages_and_misses_old_ones(
    make_settings: SettingsFactory, sqlite_url: str, fake_model: FakeModel
) -> None:
    old, young = mention("asked long ago"), mention("asked just now", key=KEY)
    async with parley_on(make_settings, sqlite_url) as stopped:  # stores, never serves
        for number, message in enumerate([old, young]):
            stored = await stopped.accept(
                Inbound(
                    message.key, message.author, message.text, f"m{number}", facts=message.facts
                ),
                Route("test", str(number + 1)),
            )
            assert stored.message.message_id == f"m{number}"
        async with stopped.store.engine.begin() as connection:
            await connection.execute(
                update(InboundItem)
                .where(InboundItem.event_key == f"{KEY.channel}/m0")
                .values(received_at=time.time() - 601)
            )

    async with parley_on(make_settings, sqlite_url) as restarted:
        answers = Answers(restarted)
        await restarted.pipeline.serve("test", answers)
        await until(lambda: answers.finals, 10)
        await settled(restarted)
        counts = await restarted.pipeline.queue.counts()
    assert [message.text for message, _ in answers.finals] == ["asked just now"]
    assert counts == {"answered": 1, "missed": 1}
    assert restarted.pipeline.missed == 1
    assert len(fake_model.requests) == 1


async def test_forget_me_drops_what_waits_from_before_and_keeps_what_came_after(
    make_settings: SettingsFactory, sqlite_url: str, fake_model: FakeModel
) -> None:
    other = ConversationKey("test", "w", "elsewhere")
    async with parley_on(make_settings, sqlite_url) as parley:
        for order, lane, message in [
            ("1", "busy", mention("my locker code is 4471", key=other)),
            ("2", "test", Inbound(KEY, ALICE, "", "forget", command=Command("forget", "me"))),
            ("3", "busy", mention("hello again", key=other)),
        ]:
            message = replace(message, message_id=message.message_id or order)
            assert (await parley.accept(message, Route(lane, order))).verdict is Verdict.ANSWER
        answers = Answers(parley)
        await parley.pipeline.serve("test", answers)  # "busy" has no worker: both wait
        await until(lambda: answers.finals, 10)
        waiting = await parley.pipeline.queue.waiting("test")
        counts = await parley.pipeline.queue.counts()
    assert "deleted 1 message (yours" in answers.finals[0][1].text
    assert [json.loads(text)["message"]["text"] for _id, text in waiting] == ["hello again"]
    assert counts == {"answered": 1, "missed": 1, "pending": 1}
