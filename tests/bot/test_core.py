"""The core end to end: Parley → real openai client → fake model server → SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.chat import ChatMessage
from bot.core import Parley
from bot.messages import ConversationKey, Delta, Facts, Final, Inbound, Outcome
from bot.policy import Verdict
from bot.prompt import alternate_roles
from bot.queued import Route
from bot.runtime import open_parley
from memory.store import NewMessage
from tests.conftest import SettingsFactory
from tests.fakes.model_server import BreakStream, Fail, FakeModel, Hang, Reply
from tests.helpers import (
    ALICE,
    BOB,
    KEY,
    ask,
    collect,
    index_segments,
    left_to_merge,
    mention,
    requests_for,
    through_pipeline,
)


async def test_reply_streams_then_is_stored(parley: Parley, fake_model: FakeModel) -> None:
    fake_model.script(Reply("Hello there, nice to meet you!", chunk=5))
    events = await collect(parley, Inbound(KEY, ALICE, "hi"))
    deltas = [e for e in events if isinstance(e, Delta)]
    assert len(deltas) >= 5 and deltas[-1].text == "Hello there, nice to meet you!"
    assert events[-1] == Final("Hello there, nice to meet you!")
    conversation = await parley.store.conversation(KEY)
    stored = await parley.store.messages(conversation.id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "hi"),
        ("assistant", "Hello there, nice to meet you!"),
    ]
    assert all(m.tokens > 0 for m in stored)


async def test_history_and_speaker_names_reach_the_model(
    parley: Parley, fake_model: FakeModel
) -> None:
    await ask(parley, "I'm planning the release.")
    await ask(parley, "I'll write the notes.", author=BOB)
    sent = fake_model.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[1] == {"role": "user", "content": "[Alice] I'm planning the release."}
    assert sent[2]["role"] == "assistant"
    assert sent[3] == {"role": "user", "content": "[Bob] I'll write the notes."}
    assert fake_model.requests[-1]["max_tokens"] == parley.settings.max_reply_tokens


async def test_redelivered_message_is_answered_once(parley: Parley, fake_model: FakeModel) -> None:
    message = Inbound(KEY, ALICE, "hello", message_id="m-1", facts=Facts(mentioned=True))
    [final] = await through_pipeline(parley, [message])
    assert final.outcome is Outcome.OK
    again = await parley.accept(message, Route("test", "1"))
    assert again.verdict is Verdict.IGNORE and not again.notice
    assert await through_pipeline(parley, [message]) == []
    assert len(fake_model.requests) == 1


async def test_empty_message_makes_no_model_call(parley: Parley, fake_model: FakeModel) -> None:
    final = await ask(parley, "   \n ")
    assert final.outcome is Outcome.EMPTY and "empty" in final.text
    assert fake_model.requests == []


async def test_rate_limit_is_retried_honouring_retry_after(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(429, retry_after=0.2), Fail(503), Reply("made it"))
    async with open_parley(make_settings(model_retries=3)) as parley:
        started = asyncio.get_running_loop().time()
        final = await ask(parley, "hi")
        elapsed = asyncio.get_running_loop().time() - started
    assert final == Final("made it")
    assert len(fake_model.requests) == 3
    assert elapsed >= 0.2  # waited as the server asked


async def test_exhausted_retries_give_a_clear_message_and_keep_the_question(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(429), Fail(429))
    async with open_parley(make_settings(model_retries=1)) as parley:
        final = await ask(parley, "are you there?")
        stored = await parley.store.messages((await parley.store.conversation(KEY)).id)
    assert final.outcome is Outcome.RATE_LIMITED and "try again" in final.text
    assert [m.role for m in stored] == ["user"]  # the question is kept, no half reply


async def test_server_error_timeout_and_broken_stream_store_no_reply(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(500), Hang(3), BreakStream("partial ans"))
    async with open_parley(make_settings(request_timeout=0.5)) as parley:
        outcomes = [(await ask(parley, f"q{i}")).outcome for i in range(3)]
        stored = await parley.store.messages((await parley.store.conversation(KEY)).id)
    assert outcomes == [Outcome.SERVER_ERROR, Outcome.TIMEOUT, Outcome.INTERRUPTED]
    assert {m.role for m in stored} == {"user"}


async def test_bad_key_and_unknown_model_are_not_retried(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(401, "Incorrect API key"), Fail(404, "model not found"))
    async with open_parley(make_settings(model_retries=3)) as parley:
        auth = await ask(parley, "one")
        missing = await ask(parley, "two")
    assert auth.outcome is Outcome.AUTH and "OPENAI_API_KEY" in auth.text
    assert missing.outcome is Outcome.MODEL_NOT_FOUND and "PARLEY_MODEL" in missing.text
    assert len(fake_model.requests) == 2


async def test_quota_exhaustion_is_named(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(429, "You exceeded your quota", code="insufficient_quota"))
    async with open_parley(make_settings()) as parley:
        final = await ask(parley, "hi")
    assert final.outcome is Outcome.QUOTA and "quota" in final.text


async def test_unreachable_endpoint_is_explained(make_settings: SettingsFactory) -> None:
    async with open_parley(make_settings(openai_base_url="http://127.0.0.1:9/v1")) as parley:
        final = await ask(parley, "hello?")
    assert final.outcome is Outcome.UNREACHABLE
    assert "127.0.0.1:9" in final.text and "OPENAI_BASE_URL" in final.text


async def test_context_overflow_retrims_once(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """The endpoint's real window is smaller than configured: re-trim and retry once."""
    async with open_parley(make_settings(context_tokens=4000, max_reply_tokens=200)) as parley:
        for i in range(40):
            await ask(parley, f"message {i}: " + "lorem ipsum dolor sit amet " * 10)
        fake_model.context_window = 2800
        final = await ask(parley, "and now?")
    assert final.outcome is Outcome.OK
    first, second = requests_for(fake_model, "and now?")
    assert len(second["messages"]) < len(first["messages"])
    assert second["messages"][-1]["content"] == "[Alice] and now?"


async def test_overflow_that_persists_is_reported_then_the_conversation_goes_on(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    """Each overflow tightens the calibration and re-trims; after a few the person is told,
    and the next message is answered."""
    overflow = Fail(400, "maximum context length", code="context_length_exceeded")
    fake_model.script(overflow, overflow, overflow, overflow)
    async with open_parley(make_settings()) as parley:
        final = await ask(parley, "hi")
        assert final.failed and "PARLEY_CONTEXT_TOKENS" in final.text
        assert len(fake_model.requests) == 4
        assert (await ask(parley, "still there?")).outcome is Outcome.OK


async def test_other_bad_request_is_reported_not_retried(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(400, "temperature out of range"))
    async with open_parley(make_settings(model_retries=3)) as parley:
        final = await ask(parley, "hi")
    assert final.outcome is Outcome.BAD_REQUEST and "temperature out of range" in final.text
    assert len(fake_model.requests) == 1


async def test_one_conversation_is_answered_in_order(parley: Parley, fake_model: FakeModel) -> None:
    fake_model.script(Reply("first answer", delay=0.3), Reply("second answer"))
    first, second = await through_pipeline(parley, [mention("first"), mention("second")])
    assert (first.text, second.text) == ("first answer", "second answer")
    # The second prompt was built after the first reply was stored.
    assert fake_model.requests[1]["messages"][-2] == {
        "role": "assistant",
        "content": "first answer",
    }


async def test_conversations_proceed_concurrently(parley: Parley, fake_model: FakeModel) -> None:
    fake_model.script(Reply("slow", delay=1.0), Reply("fast", delay=1.0))
    other = ConversationKey("test", "workspace", "random")
    started = asyncio.get_running_loop().time()
    await asyncio.gather(ask(parley, "a"), ask(parley, "b", key=other))
    # One after the other would take 2 s; the rest is slack for a loaded machine.
    assert asyncio.get_running_loop().time() - started < 1.8


async def test_reasoning_models_get_max_completion_tokens(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    async with open_parley(make_settings(model="o3-mini")) as parley:
        await ask(parley, "hi")
    body = fake_model.requests[-1]
    assert "max_tokens" not in body and body["max_completion_tokens"] == 1024


async def test_a_database_failure_is_reported_not_raised(
    parley: Parley, fake_model: FakeModel
) -> None:
    await ask(parley, "hello")
    async with parley.store.engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE messages")
    final = await ask(parley, "still there?")
    assert final.failed and "database" in final.text
    memory = await ask(parley, "/memory")
    assert memory.failed and "database" in memory.text


async def test_an_endpoint_echoing_the_key_never_shows_it(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(Fail(400, "Invalid request for key sk-test-abcdefgh12345678"))
    async with open_parley(make_settings(openai_api_key="sk-test-abcdefgh12345678")) as parley:
        final = await ask(parley, "hi")
    assert final.outcome is Outcome.BAD_REQUEST
    assert "abcdefgh12345678" not in final.text and "[redacted]" in final.text


async def test_strict_roles_alternate_for_picky_chat_templates(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    async with open_parley(make_settings(strict_roles=True)) as parley:
        await parley.record(Inbound(KEY, BOB, "Bob was here first"))
        await ask(parley, "/persona set Be brief.")
        await ask(parley, "hello")
        await parley.record(Inbound(KEY, BOB, "and again"))
        await ask(parley, "what did Bob say?")
    roles = [m["role"] for m in fake_model.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    sent = fake_model.requests[-1]["messages"]
    assert sent[0]["content"] == "Be brief."
    assert sent[1]["content"] == "[Bob] Bob was here first\n\n[Alice] hello"
    assert sent[3]["content"] == "[Bob] and again\n\n[Alice] what did Bob say?"


def test_alternate_roles_merges_neighbours_and_drops_a_leading_reply() -> None:
    messages: list[ChatMessage] = [
        {"role": "system", "content": "persona"},
        {"role": "assistant", "content": "an answer cut from its question"},
        {"role": "user", "content": "quoted recall"},
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "quoted search record"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    assert alternate_roles(messages) == [
        {"role": "system", "content": "persona"},
        {"role": "user", "content": "quoted recall\n\nq1\n\nquoted search record"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]


async def test_the_search_index_is_merged_after_replies_not_in_them(
    make_settings: SettingsFactory, sqlite_url: str
) -> None:
    path = Path(sqlite_url.split(":///", 1)[1])
    async with open_parley(make_settings()) as parley:
        for n in range(6):  # 12 stores: a segment each, none merged inside a store
            await ask(parley, f"kumquat question {n}")
        await parley.drain()
        assert await index_segments(parley.store.engine) <= 4
        assert not left_to_merge(path)
        for n in range(8):  # messages not answered are merged after too
            await parley.record(Inbound(KEY, BOB, f"an aside {n}"))
        await parley.drain()
        assert not left_to_merge(path)


async def test_a_bot_starting_merges_what_was_stored_meanwhile(
    make_settings: SettingsFactory, sqlite_url: str
) -> None:
    path = Path(sqlite_url.split(":///", 1)[1])
    async with open_parley(make_settings()) as parley:  # not serving: merges only after writes
        conversation = await parley.store.conversation(KEY)
        for n in range(10):
            await parley.store.add(conversation.id, NewMessage("user", "a", "A", f"note {n}", 3))
        assert await index_segments(parley.store.engine) == 10
    async with open_parley(make_settings(), serving=True) as parley:
        await parley.drain()
        assert await index_segments(parley.store.engine) <= 4
    assert not left_to_merge(path)
