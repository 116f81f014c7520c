"""Recall of messages that left the window: on a real SQLite file and the real PostgreSQL,
with the real openai client talking to the fake model server."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.messages import Inbound
from memory.db import create_engine, migrate
from memory.ranking import fts5_query, tsquery
from memory.search import FullText, search_terms
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.helpers import (
    ALICE,
    BOB,
    ELSEWHERE,
    GENERAL,
    RANDOM,
    ask,
    filler,
    is_quoted,
    old_conversation,
    old_message,
    parley_on,
    reply_prompt,
)

FACT = "By the way, my dog is called Biscuit and she is a beagle."
QUESTION = "Remind me, what is my dog called?"


async def test_recall_brings_back_a_fact_from_500_messages_earlier(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        for number in range(499):
            await parley.record(Inbound(GENERAL, BOB, filler(number)))
        assert not (await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)).failed
        prompt = reply_prompt(fake_model, QUESTION)
        assert "Biscuit" in prompt
        assert "[Alice]" not in prompt.split("Biscuit")[0].splitlines()[-1]  # an excerpt...
        assert "Alice" in prompt.split("Biscuit")[0].splitlines()[-1]  # ...naming its author
        history = [
            m["content"]
            for m in fake_model.requests[-1]["messages"]
            if m["role"] != "system" and not is_quoted(m)
        ]
        assert not any("Biscuit" in str(text) for text in history), "came from recall, not window"


async def test_the_plain_window_has_forgotten_it(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url, recall=False) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        for number in range(60):
            await parley.record(Inbound(GENERAL, BOB, filler(number)))
        await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
        assert "Biscuit" not in reply_prompt(fake_model, QUESTION)


async def test_recall_never_crosses_conversations(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    secret = "My locker combination is 4417, keep it secret."
    question = "What is my locker combination?"
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, ALICE, secret))
        await parley.add_document(GENERAL, ALICE, "lockers.md", b"Locker combination: 9931.")
        for key in (RANDOM, ELSEWHERE):
            for number in range(40):
                await parley.record(Inbound(key, BOB, filler(number)))
            await ask(parley, key=key, author=ALICE, text=question)
            prompt = reply_prompt(fake_model, question)
            assert "4417" not in prompt and "9931" not in prompt
            fake_model.requests.clear()


async def test_workspace_scope_shares_recall_within_a_workspace_only(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url, recall_scope="workspace") as parley:
        await parley.record(Inbound(GENERAL, ALICE, "The release codename is Marmalade."))
        await ask(parley, key=RANDOM, author=BOB, text="What is the release codename?")
        assert "Marmalade" in reply_prompt(fake_model, "What is the release codename?")
        await ask(parley, key=ELSEWHERE, author=BOB, text="Which release codename again?")
        assert "Marmalade" not in reply_prompt(fake_model, "Which release codename again?")


async def test_korean_and_hostile_text_is_searched_safely(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, ALICE, "우리는 내일 서울역에서 만나기로 했어요."))
        for number in range(60):
            await parley.record(Inbound(GENERAL, BOB, filler(number)))
        await ask(parley, key=GENERAL, author=ALICE, text="서울역 몇 시에 만나?")
        assert "서울역에서" in reply_prompt(fake_model, "서울역 몇 시에 만나?")
        hostile = "\"AND OR NOT * ( ) : ^ - {x} NEAR/3 '; DROP TABLE messages; -- ½ _x_"
        assert not (await ask(parley, key=GENERAL, author=ALICE, text=hostile)).failed


def test_queries_are_built_from_words_only() -> None:
    terms = search_terms('What is "Rex"? NEAR(dog*, 3) AND {x}: 서울에서 the dog')
    assert terms == ["rex", "near", "dog", "서울"]
    assert '"서울"' in fts5_query(terms, [7])
    assert '{conversation_id} : ("7")' in fts5_query(terms, [7])
    assert tsquery(terms) == "'rex' | 'near' | 'dog' | '서울'"
    assert tsquery(["привет"]) == "'привет':*"  # other unspaced-suffix scripts: prefixes
    assert search_terms("?!… --") == []


async def test_migration_indexes_existing_history(database_url: str) -> None:
    engine: AsyncEngine = create_engine(database_url)
    try:
        await migrate(engine, "0001")
        conversation_id = await old_conversation(engine, GENERAL)
        await old_message(engine, conversation_id, "The vault opens with a brass key.")
        await migrate(engine)
        hits = await FullText(engine).messages([conversation_id], ["brass"], 5)
        assert [hit.content for hit in hits] == ["The vault opens with a brass key."]
    finally:
        await engine.dispose()
