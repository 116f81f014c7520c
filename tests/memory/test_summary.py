"""The rolling summary: written in the background after replies, shown at the top of the
prompt; its failure never reaches a reply."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import SettingsFactory
from tests.fakes.model_server import Behaviour, Fail, FakeModel, Reply, echo
from tests.helpers import ALICE, GENERAL, ask, is_summary_request, parley_on

SUMMARY = "Alice is planning a trip to Norway and collects teapots."


def _turn(number: int) -> str:
    return (
        f"Message {number}: I keep adding details about my plans, the people involved, "
        f"the budget, the dates and many other things worth remembering later on."
    )


async def _sixteen_turns(make_settings: SettingsFactory, database_url: str) -> None:
    """Enough long messages in a small window for some to leave it (and be summarized)."""
    async with parley_on(
        make_settings, database_url, context_tokens=700, max_reply_tokens=64
    ) as parley:
        for number in range(16):
            assert not (await ask(parley, key=GENERAL, author=ALICE, text=_turn(number))).failed
            await parley.drain()


async def test_summary_is_written_after_replies_and_used(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    def model(body: dict[str, Any]) -> Behaviour:
        return Reply(SUMMARY) if is_summary_request(body) else echo(body)

    fake_model.default = model
    await _sixteen_turns(make_settings, database_url)
    summaries = [body for body in fake_model.requests if is_summary_request(body)]
    assert summaries, "messages left the window, so a summary was requested"
    assert "Message 0:" in summaries[0]["messages"][-1]["content"]
    last = [body for body in fake_model.requests if not is_summary_request(body)][-1]
    assert SUMMARY in last["messages"][1]["content"]  # right after the persona


async def test_summary_failure_does_not_affect_replies(
    make_settings: SettingsFactory,
    fake_model: FakeModel,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def model(body: dict[str, Any]) -> Behaviour:
        return Fail(500, "summary model down") if is_summary_request(body) else echo(body)

    fake_model.default = model
    caplog.set_level(logging.WARNING)
    async with parley_on(
        make_settings, database_url, context_tokens=700, max_reply_tokens=64
    ) as parley:
        for number in range(16):
            final = await ask(parley, key=GENERAL, author=ALICE, text=_turn(number))
            assert not final.failed and final.text.startswith("echo:")
            await parley.drain()
    assert any(is_summary_request(body) for body in fake_model.requests)
    assert "summary of conversation" in caplog.text and "not updated" in caplog.text


async def test_a_cut_off_summary_is_discarded(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    """A summary that hit its token limit (finish "length") is half a summary: not kept."""

    def model(body: dict[str, Any]) -> Behaviour:
        return Reply(SUMMARY, finish="length") if is_summary_request(body) else echo(body)

    fake_model.default = model
    await _sixteen_turns(make_settings, database_url)
    assert any(is_summary_request(body) for body in fake_model.requests)
    last = [body for body in fake_model.requests if not is_summary_request(body)][-1]
    assert not any(SUMMARY in str(m["content"]) for m in last["messages"])


async def test_replies_leaving_too_little_to_summarize_cost_it_no_statement(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    """The summary as read with the conversation and the messages the window's read returned
    tell when there is nothing to summarize yet."""

    def model(body: dict[str, Any]) -> Behaviour:
        return Reply(SUMMARY) if is_summary_request(body) else echo(body)

    fake_model.default = model
    statements = 0

    def counted(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        nonlocal statements
        if "('merge'" not in statement:  # the search index's step after a reply is not its
            statements += 1

    quiet = summarized = 0
    async with parley_on(
        make_settings, database_url, context_tokens=700, max_reply_tokens=64
    ) as parley:
        event.listen(parley.store.engine.sync_engine, "before_cursor_execute", counted)
        for number in range(24):
            await ask(parley, key=GENERAL, author=ALICE, text=_turn(number))
            requests, statements = len(fake_model.requests), 0
            await parley.drain()
            if len(fake_model.requests) == requests:
                quiet += 1
                assert statements == 0
            else:
                summarized += 1
    assert quiet >= 10 and summarized >= 2
