"""Trimming to the context window, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, insert

from bot.prompt import READ_AHEAD
from bot.runtime import open_parley
from memory.tables import Message
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel, prompt_tokens
from tests.helpers import KEY, ask, is_quoted, requests_for

WINDOW = 1500
REPLY = 300

TEXTS = {
    "english": "We agreed to ship the release on Friday after the last review of the notes. ",
    "korean": "우리는 마지막 검토가 끝난 뒤 금요일에 릴리스를 배포하기로 합의했습니다. ",
}


@pytest.mark.parametrize("language", ["english", "korean"])
async def test_prompts_stay_within_budget_and_history_is_untouched(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str, language: str
) -> None:
    fake_model.context_window = WINDOW  # the fake rejects any prompt that would not fit
    settings = make_settings(
        database_url=database_url, context_tokens=WINDOW, max_reply_tokens=REPLY
    )
    async with open_parley(settings) as parley:
        for i in range(30):
            final = await ask(parley, f"{i}: " + TEXTS[language] * (1 + i % 4))
            assert not final.failed, final
        conversation = await parley.store.conversation(KEY)
        before = await parley.store.messages(conversation.id)
        await ask(parley, "/memory")
        await ask(parley, "마지막 질문" if language == "korean" else "last question")
        after = await parley.store.messages(conversation.id)

    assert len(before) == 60 and after[:60] == before  # trimming never alters stored rows
    for body in fake_model.requests:
        used = prompt_tokens(body["messages"], fake_model.counter)
        assert used + body["max_tokens"] <= WINDOW
    question = "마지막 질문" if language == "korean" else "last question"
    last = requests_for(fake_model, question)[-1]["messages"]
    assert 2 < len(last) < 60  # old history was dropped, recent history kept
    kept = [m["content"] for m in last[1:-1] if not is_quoted(m)]  # not recall/summary
    assert kept == [
        m.content if m.role == "assistant" else f"[Alice] {m.content}" for m in before[-len(kept) :]
    ]  # the newest ones, in order


async def test_a_huge_message_is_shortened_for_the_prompt_only(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    fake_model.context_window = WINDOW
    huge = ("0123456789 abcdefghij 가나다라마 " * 40_000)[:1_000_000]
    settings = make_settings(
        database_url=database_url, context_tokens=WINDOW, max_reply_tokens=REPLY
    )
    async with open_parley(settings) as parley:
        await ask(parley, "small talk first")
        final = await ask(parley, huge)
        stored = await parley.store.messages((await parley.store.conversation(KEY)).id)
    assert not final.failed
    sent = fake_model.requests[-1]["messages"][-1]["content"]
    assert sent.startswith("[Alice] 0123456789") and "shortened" in sent
    assert prompt_tokens(fake_model.requests[-1]["messages"], fake_model.counter) + REPLY <= WINDOW
    assert stored[2].content == huge  # stored in full


async def test_window_reads_only_what_fits(
    make_settings: SettingsFactory, database_url: str
) -> None:
    """Reading the window costs the same for 5,000 stored messages as for 50."""
    async with open_parley(make_settings(database_url=database_url)) as parley:
        conversation = await parley.store.conversation(KEY)
        async with parley.store.engine.begin() as connection:
            await connection.execute(
                insert(Message),
                [
                    {
                        "conversation_id": conversation.id,
                        "role": "user",
                        "author_id": "a",
                        "author_name": "Alice",
                        "content": f"message {i}",
                        "tokens": 10,
                    }
                    for i in range(5000)
                ],
            )
        statements: list[str] = []
        rows_read = 0

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        def fetched(_conn: Any, cursor: Any, *_args: Any) -> None:
            nonlocal rows_read
            rows_read += max(cursor.rowcount, 0)

        sync_engine = parley.store.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", count)
        event.listen(sync_engine, "after_cursor_execute", fetched)
        window = await parley.store.window(conversation, 2**62, budget=500, per_message=4)
        event.remove(sync_engine, "before_cursor_execute", count)
        event.remove(sync_engine, "after_cursor_execute", fetched)

    assert len(window) == 35 and window[-1].content == "message 4999"
    assert len(statements) <= 3  # one or two batches of (id, tokens), then the rows that fit


async def test_the_window_is_read_alongside_recall_where_the_database_allows(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    """On PostgreSQL the window's read starts while recall's statement is in flight (the two
    take one round trip's time); on SQLite, whose one connection runs statements in turn, it
    follows in the reply's own task. Either way the prompt keeps the history (what the read,
    narrowed, gives: tests/memory/test_window.py)."""
    settings = make_settings(database_url=database_url, context_tokens=WINDOW)
    async with open_parley(settings) as parley:
        for i in range(6):
            await ask(parley, f"{i}: " + TEXTS["english"])
        seen: list[str] = []

        def note(when: str) -> Callable[..., None]:
            def noted(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                task = asyncio.current_task()
                kind = "recall" if statement.startswith("WITH recent") else "window"
                if kind == "recall" or "ORDER BY messages.id DESC" in statement:
                    ahead = task is not None and task.get_name() == READ_AHEAD
                    seen.append(f"{when} {kind}{' ahead' if ahead else ''}")

            return noted

        sync_engine = parley.store.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", note("start"))
        if not database_url.startswith("sqlite"):  # SQLite's reads report no end
            event.listen(sync_engine, "after_cursor_execute", note("end"))
        final = await ask(parley, "What did we agree about the release on Friday?")
    assert not final.failed
    if database_url.startswith("sqlite"):
        assert seen == ["start recall", "start window"]
    else:
        assert seen[:2] == ["start recall", "start window ahead"]
        assert seen.index("start window ahead") < seen.index("end recall")
    last = requests_for(fake_model, "Friday?")[-1]["messages"]
    assert any("release on Friday" in str(m["content"]) for m in last[1:-1])  # history kept
