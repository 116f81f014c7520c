"""Semantic recall with an embedding model (the fake's bag-of-words vectors through the real
openai client), on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import FromClause, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Parley
from bot.messages import ConversationKey, Inbound
from bot.recall import RecallProvider
from memory import embeddings
from memory.privacy import prune
from memory.tables import Message, MessageVectors, PassageVectors
from tests.conftest import SettingsFactory
from tests.fakes import model_server
from tests.fakes.model_server import Fail, FakeModel
from tests.helpers import (
    ALICE,
    BOB,
    ELSEWHERE,
    GENERAL,
    RANDOM,
    ask,
    filler,
    is_quoted,
    parley_on,
    reply_prompt,
)

MODEL = "embed-small"
# No word in common with the question; "puppy" and "name" mean "dog" and "called" to the fake.
FACT = "Biscuit is the name of my puppy."
QUESTION = "Remind me, what is my dog called?"


async def _count(parley: Parley, table: FromClause) -> int:
    async with AsyncSession(parley.store.engine) as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _history_then_index(parley: Parley, key: ConversationKey, fillers: int = 60) -> None:
    """Fillers push the fact out of the window; a reply lets the indexer run."""
    for number in range(fillers):
        await parley.record(Inbound(key, BOB, filler(number)))
    await ask(parley, key=key, author=BOB, text="hello")
    await parley.drain()


async def test_a_paraphrase_is_recalled_only_with_embeddings(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    for key, model in ((GENERAL, None), (RANDOM, MODEL)):
        async with parley_on(make_settings, database_url, embedding_model=model) as parley:
            await parley.record(Inbound(key, ALICE, FACT))
            await parley.add_document(key, ALICE, "garage.md", b"The automobile is on level 3.")
            await _history_then_index(parley, key)
            await ask(parley, key=key, author=ALICE, text=QUESTION)
            await ask(parley, key=key, author=ALICE, text="Where should I look for my car?")
            recalled = reply_prompt(fake_model, QUESTION)
            found = reply_prompt(fake_model, "Where should I look for my car?")
            assert ("Biscuit" in recalled) == (model is not None)
            assert ("level 3" in found) == (model is not None)
            history = [
                str(m["content"])
                for m in fake_model.requests[-1]["messages"]
                if m["role"] != "system" and not is_quoted(m)
            ]
            assert not any("Biscuit" in text for text in history), "from recall, not the window"
    assert all(body["model"] == MODEL for body in fake_model.embedding_requests)


@pytest.mark.parametrize("status", [404, 500])
async def test_an_endpoint_without_embeddings_falls_back_to_keywords(
    make_settings: SettingsFactory,
    fake_model: FakeModel,
    database_url: str,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """404 (no such model or route) or 500 (llama-cpp-python without --embedding): a few
    tries, then semantic recall is off with one warning; answers go on with keywords."""
    fake_model.embedding_failure = Fail(status, "model 'embed-small' not found")
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, "My dog is called Biscuit."))
        await _history_then_index(parley, GENERAL)
        for _ in range(4):
            answer = await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
            await parley.drain()
            assert not answer.failed and answer.text.startswith("echo:")
        assert "Biscuit" in reply_prompt(fake_model, QUESTION)
        assert len(fake_model.embedding_requests) == 3  # then never again
        assert await _count(parley, MessageVectors) == 0
    off = [r for r in caplog.records if "semantic recall is off" in r.getMessage()]
    assert len(off) == 1 and off[0].levelname == "WARNING"


async def test_per_token_embeddings_are_pooled_one_text_per_request(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    """llama-cpp-python without pooling sends a vector per token (and batches them wrongly):
    Parley averages them and embeds one text per request; recall by meaning still works."""
    fake_model.per_token_embeddings = True
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await _history_then_index(parley, GENERAL)
        await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
        assert "Biscuit" in reply_prompt(fake_model, QUESTION)
        assert await _count(parley, MessageVectors) > 50
    later = fake_model.embedding_requests[1:]
    assert later and all(
        isinstance(body["input"], str) or len(body["input"]) == 1 for body in later
    )


async def test_a_failing_question_embedding_leaves_keyword_recall(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, "My dog is called Biscuit."))
        await _history_then_index(parley, GENERAL)
        fake_model.embedding_failure = Fail(503, "overloaded")
        answer = await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
        assert not answer.failed and "Biscuit" in reply_prompt(fake_model, QUESTION)


async def test_vectors_go_with_forgotten_and_expired_rows(
    make_settings: SettingsFactory, database_url: str
) -> None:
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await parley.add_document(GENERAL, ALICE, "diary.txt", b"A private diary entry.")
        await _history_then_index(parley, GENERAL, fillers=3)
        messages = await _count(parley, Message.__table__)
        assert await _count(parley, MessageVectors) == messages
        assert await _count(parley, PassageVectors) == 1

        await ask(parley, key=GENERAL, author=ALICE, text="/forget me")
        assert await _count(parley, MessageVectors) == messages - 1
        assert await _count(parley, PassageVectors) == 0

        await prune(parley.store.engine, 0)
        assert await _count(parley, MessageVectors) == 0


async def test_semantic_recall_never_crosses_conversations(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await _history_then_index(parley, GENERAL, fillers=1)
        for key in (RANDOM, ELSEWHERE):
            await _history_then_index(parley, key)
            await ask(parley, key=key, author=ALICE, text=QUESTION)
            assert "Biscuit" not in reply_prompt(fake_model, QUESTION)
            fake_model.requests.clear()


async def test_vectors_of_another_size_are_never_mixed_and_get_re_embedded(
    make_settings: SettingsFactory,
    fake_model: FakeModel,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model behind the same name was swapped for one with smaller vectors: the old ones
    are not compared with the new question, and are replaced in the background."""
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await _history_then_index(parley, GENERAL)
    monkeypatch.setattr(model_server, "EMBEDDING_SIZE", 256)
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        answer = await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
        assert not answer.failed
        await parley.drain()
        async with AsyncSession(parley.store.engine) as session:
            sizes = set(
                await session.scalars(select(func.length(MessageVectors.c.vector)).distinct())
            )
        assert sizes == {256 * 4}
        await ask(parley, key=GENERAL, author=ALICE, text="Once more: " + QUESTION)
        assert "Biscuit" in reply_prompt(fake_model, "Once more: " + QUESTION)


async def test_messages_are_embedded_with_their_speaker(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    """ "My puppy" means nothing without who said it: a message is embedded as the model sees
    it, "[Alice] …", so a question naming Alice matches her messages."""
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await _history_then_index(parley, GENERAL, fillers=1)
    embedded = [text for body in fake_model.embedding_requests for text in body["input"]]
    assert f"[Alice] {FACT}" in embedded
    assert FACT not in embedded


@pytest.mark.parametrize(("fillers", "found"), [(60, True), (140, False)])
async def test_the_semantic_pool_reaches_deep_history_down_to_its_bound(
    make_settings: SettingsFactory,
    fake_model: FakeModel,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fillers: int,
    found: bool,
) -> None:
    """The paraphrase (no word in common with the question) is found far below the window, but
    never deeper than the pool's bound."""
    monkeypatch.setattr(embeddings, "_MESSAGE_POOL", 64)
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        await parley.record(Inbound(GENERAL, ALICE, FACT))
        await _history_then_index(parley, GENERAL, fillers)
        await ask(parley, key=GENERAL, author=ALICE, text=QUESTION)
        assert ("Biscuit" in reply_prompt(fake_model, QUESTION)) is found


async def test_semantic_candidates_never_push_keyword_candidates_out(
    make_settings: SettingsFactory, database_url: str
) -> None:
    """Twelve messages match the question's words, twelve others only its meaning: recall
    keeps all of them as candidates (the share decides what fits)."""
    by_word = [f"Walked the dog along route {n} today, the long way round." for n in range(12)]
    by_meaning = [f"Puppy name idea number {n}: something short." for n in range(12)]
    async with parley_on(make_settings, database_url, embedding_model=MODEL) as parley:
        for text in by_word + by_meaning:
            await parley.record(Inbound(GENERAL, ALICE, text))
        await _history_then_index(parley, GENERAL)
        recall = next(p for p in parley.providers if isinstance(p, RecallProvider)).recall
        conversation = await parley.store.conversation(GENERAL)
        found = {r.hit.content for r in await recall.hits(conversation, QUESTION, 500)}
    assert set(by_word) <= found
    assert set(by_meaning) <= found
