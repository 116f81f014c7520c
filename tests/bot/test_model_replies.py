"""How replies end and what of them is shown: cut replies marked, reasoning left out, usage
reported, tools a model ignores, background calls behind replies (issue 13)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from bot.chat import ChatClient, ChatError, StreamCut
from bot.core import Parley
from bot.messages import Delta, Final, Inbound, Outcome
from bot.reasoning import ThinkingFilter
from bot.reply_stream import ReplyStream, Usage
from bot.runtime import open_parley
from bot.texts import say
from bot.tools import ToolRun
from tests.conftest import SettingsFactory
from tests.fakes.model_server import BreakStream, FakeModel, Hang, Reply, tool_call
from tests.fakes.search_server import FakeSearch
from tests.fakes.serve import serve
from tests.helpers import ALICE, KEY, ask, collect


async def _stored(parley: Parley) -> list[tuple[str, str]]:
    conversation = await parley.store.conversation(KEY)
    return [(m.role, m.content) for m in await parley.store.messages(conversation.id)]


async def test_a_reply_cut_at_its_limit_is_marked_shown_and_stored(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(Reply("The first half of a long", finish="length"))
    final = await ask(parley, "tell me everything")
    assert final.outcome is Outcome.OK
    assert final.text == "The first half of a long" + say("reply.cut")
    assert (await _stored(parley))[-1] == ("assistant", final.text)


async def test_a_stream_ending_without_a_finish_is_shown_cut_and_not_stored(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(Reply("Half an answer", finish=None))
    final = await ask(parley, "go on")
    assert final.outcome is Outcome.INTERRUPTED
    assert final.text == "Half an answer" + say("reply.interrupted")
    assert await _stored(parley) == [("user", "go on")]  # no half answer in the history


async def test_a_dropped_stream_says_it_was_interrupted(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(BreakStream("The beginning of"), BreakStream(""))
    cut = await ask(parley, "tell me")
    assert cut.outcome is Outcome.INTERRUPTED
    assert cut.text == "The beginning of" + say("reply.interrupted")
    assert "reach" not in cut.text
    nothing = await ask(parley, "again")  # dropped before a word: told so, not "unreachable"
    assert (nothing.outcome, nothing.text) == (Outcome.INTERRUPTED, say("error.interrupted"))
    assert await _stored(parley) == [("user", "tell me"), ("user", "again")]


async def test_a_finished_reply_is_not_marked(parley: Parley) -> None:
    final = await ask(parley, "hi")
    assert say("reply.cut") not in final.text


async def test_think_tags_are_never_shown_stored_or_counted(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(
        Reply("<think>\nThe user greets me. I should greet back.\n</think>\n\nHello!", chunk=3)
    )
    events = await collect(parley, Inbound(KEY, ALICE, "hi"))
    assert all("greet" not in event.text for event in events)
    deltas = [event for event in events if isinstance(event, Delta)]
    assert deltas and deltas[0].text.startswith("H")  # nothing shown while it thinks
    assert isinstance(events[-1], Final) and events[-1].text == "Hello!"
    assert (await _stored(parley))[-1] == ("assistant", "Hello!")


async def test_reasoning_content_is_never_shown_or_stored(
    parley: Parley, fake_model: FakeModel
) -> None:
    fake_model.script(Reply("Four.", reasoning="Two plus two is four, obviously."))
    final = await ask(parley, "2+2?")
    assert final.text == "Four."
    assert (await _stored(parley))[-1] == ("assistant", "Four.")
    follow_up = await ask(parley, "and?")
    assert follow_up.outcome is Outcome.OK
    sent = json.dumps(fake_model.requests[-1]["messages"])
    assert "obviously" not in sent


def test_the_thinking_filter_handles_tags_split_across_pieces() -> None:
    pieces = ["  <th", "ink>plan", "ning</thi", "nk>", "\n\nAn", "swer"]
    thinking = ThinkingFilter()
    shown = "".join(thinking.feed(piece) for piece in pieces) + thinking.finish()
    assert shown == "Answer" and thinking.thought
    plain = ThinkingFilter()
    assert plain.feed("<") == "" and plain.feed("3 you") == "<3 you"
    short = ThinkingFilter()
    assert short.feed("<t") == "" and short.finish() == "<t"


async def test_the_stream_reports_the_servers_usage(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """What wt-limits records: the server's own token counts of each call."""
    chat = ChatClient(make_settings())
    try:
        reply = chat.stream([{"role": "user", "content": "Say hi"}])
        text = "".join([piece async for piece in reply])
    finally:
        await chat.close()
    assert text == "echo: Say hi"
    assert reply.usage == Usage(
        prompt_tokens=fake_model.prompt_size(fake_model.requests[-1]),
        completion_tokens=fake_model.counter.count(text),
    )
    assert reply.finish_reason == "stop" and not reply.cut
    assert fake_model.requests[-1]["stream_options"] == {"include_usage": True}


async def test_background_calls_wait_for_replies_in_flight(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """On a server computing one request at a time, a summary must not delay a reply."""
    fake_model.script(Reply("a slow reply", delay=0.3), Reply("summary"))
    chat = ChatClient(make_settings())

    async def read(background: bool) -> str:
        reply = chat.stream([{"role": "user", "content": "x"}], background=background)
        return "".join([piece async for piece in reply])

    try:
        answer = asyncio.create_task(read(background=False))
        await asyncio.sleep(0.05)
        summary = asyncio.create_task(read(background=True))
        await asyncio.sleep(0.1)
        assert len(fake_model.requests) == 1  # the summary waits
        assert await answer == "a slow reply" and await summary == "summary"
    finally:
        await chat.close()


async def test_a_timed_out_request_to_a_local_server_is_not_sent_again(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """A local server keeps computing a request its client gave up on: a retry would queue
    behind it. (429 and 5xx are still retried: tests/bot/test_core.py.)"""
    fake_model.script(Hang(1), Reply("too late"))
    settings = make_settings(model_retries=3, request_timeout=0.3)
    async with open_parley(settings) as parley:
        final = await ask(parley, "hello?")
    assert final.outcome is Outcome.TIMEOUT
    assert len(fake_model.requests) == 1


async def test_a_model_that_ignores_tools_keeps_no_room_for_their_results(
    make_settings: SettingsFactory, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    settings = make_settings(
        search_provider="searxng",
        search_url=fake_search.base_url,
        context_tokens=3000,
        max_reply_tokens=200,
    )
    async with open_parley(settings) as parley:
        assert parley.tools, "web search is offered as a tool"
        budgets = []
        for i in range(5):
            await ask(parley, f"message {i}: " + "lorem ipsum dolor sit amet " * 30)
            budgets.append(len(fake_model.requests[-1]["messages"]))
        assert parley.tool_use.ignored
    # Once ignored, the results' share goes to history: later prompts hold more messages.
    assert fake_model.requests[-1].get("tools")  # still offered, in case it ever calls
    assert budgets[-1] > budgets[2]


async def test_a_replys_usage_sums_every_call_it_made(
    make_settings: SettingsFactory, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    """A reply that searched made two calls: its usage is both, as the server counted them."""
    fake_model.script(
        Reply("", tool_calls=[tool_call("web_search", {"query": "parley"})]),
        Reply("Found it [1]."),
    )
    settings = make_settings(search_provider="searxng", search_url=fake_search.base_url)
    async with open_parley(settings) as parley:
        chat, tools = parley.chat, list(parley.tools.values())
        run = ToolRun(chat, tools, parley.counter, max_rounds=2, room=5000)
        text = "".join([p async for p in run.stream([{"role": "user", "content": "search"}])])
    assert text == "Found it [1]." and len(run.calls) == 2
    sizes = [fake_model.prompt_size(body) for body in fake_model.requests]
    assert run.usage is not None and run.usage.prompt_tokens == sum(sizes)


async def test_background_calls_wait_while_the_server_may_still_compute_a_timed_out_reply(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Hang(1), Reply("summary"))
    chat = ChatClient(make_settings(request_timeout=0.4))
    try:
        reply = chat.stream([{"role": "user", "content": "x"}])
        with pytest.raises(ChatError) as failed:
            _ = [piece async for piece in reply]
        assert failed.value.outcome is Outcome.TIMEOUT
        summary = asyncio.create_task(
            _read(chat.stream([{"role": "user", "content": "y"}], background=True))
        )
        await asyncio.sleep(0.2)
        assert len(fake_model.requests) == 1  # not yet: the server is busy with the first
        assert await summary == "summary"
    finally:
        await chat.close()


async def _read(reply: ReplyStream) -> str:
    return "".join([piece async for piece in reply])


def _events(*chunks: object) -> bytes:
    return b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks)


async def _raw_stream(make_settings: SettingsFactory, body: bytes) -> tuple[ReplyStream, str]:
    """The client reading `body` as a server's whole SSE answer: the stream and its text."""

    async def completions(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serve(app) as port:
        chat = ChatClient(make_settings(openai_base_url=f"http://127.0.0.1:{port}/v1"))
        try:
            reply = chat.stream([{"role": "user", "content": "x"}])
            text = "".join([piece async for piece in reply])
        finally:
            await chat.close()
    return reply, text


async def test_chunks_are_read_as_sent_by_terse_servers(make_settings: SettingsFactory) -> None:
    """Chunks as plain JSON: fields servers leave out (a call's index, a delta, usage figures),
    a tool call in pieces, keep-alive comments, a usage-only chunk, then `[DONE]`."""
    body = (
        _events(
            {"choices": [{"delta": {"role": "assistant", "content": "Looking"}}]},
            {"choices": [{"delta": {"tool_calls": [{"id": "c1", "function": {"name": "find"}}]}}]},
            {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": '{"q":'}}]}}]},
        )
        + b": keep-alive\n\n"
        + _events(
            {
                "choices": [
                    {"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}
                ]
            },
            {"choices": [{"finish_reason": "tool_calls"}]},
            {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}},
        )
        + b"data: [DONE]\n\n"
        + _events({"choices": [{"delta": {"content": "after the end"}}]})
    )
    reply, text = await _raw_stream(make_settings, body)
    assert text == "Looking"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("c1", "find", '{"q":1}')]
    assert reply.usage == Usage(12, 5) and reply.finish_reason == "tool_calls"


async def test_an_error_sent_inside_the_stream_cuts_the_reply(
    make_settings: SettingsFactory,
) -> None:
    body = _events(
        {"choices": [{"index": 0, "delta": {"content": "Half an ans"}}]},
        {"error": {"message": "the server is overloaded", "type": "server_error"}},
    )
    with pytest.raises(StreamCut, match="overloaded"):
        await _raw_stream(make_settings, body)
