"""Shared documents become recallable in their conversation, cited by name."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Attachment, Facts, Inbound, Outcome
from bot.policy import Verdict
from bot.queued import Route
from bot.texts import explain
from memory.documents import UnreadableDocument, split_passages
from memory.tables import Document
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.fakes.pdf import make_pdf
from tests.helpers import (
    ALICE,
    BOB,
    GENERAL,
    ask,
    filler,
    parley_on,
    reply_prompt,
    through_pipeline,
)


async def test_a_shared_pdf_answers_a_later_question(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    pdf = make_pdf(
        [
            "Zephyr kettle user manual",
            "",
            "The Zephyr kettle warranty lasts seven years from purchase.",
            "Descale the kettle monthly with citric acid.",
        ]
    )
    async with parley_on(make_settings, database_url) as parley:
        shared = await ask(
            parley,
            key=GENERAL,
            author=ALICE,
            text="",
            attachments=(Attachment("zephyr-manual.pdf", "application/pdf", pdf),),
        )
        assert shared.outcome == Outcome.COMMAND and "zephyr-manual.pdf" in shared.text
        for number in range(40):
            await parley.record(Inbound(GENERAL, BOB, filler(number)))
        question = "How long is the Zephyr kettle warranty?"
        assert not (await ask(parley, key=GENERAL, author=BOB, text=question)).failed
        prompt = reply_prompt(fake_model, question)
        assert "warranty lasts seven years" in prompt
        assert "zephyr-manual.pdf" in prompt and "Alice" in prompt


async def test_text_with_an_attachment_is_answered_using_it(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    notes = b"# Offsite\n\nThe offsite is in Lisbon on 3 March.\n"
    async with parley_on(make_settings, database_url) as parley:
        question = "Where is the offsite?"
        await ask(
            parley,
            key=GENERAL,
            author=ALICE,
            text=question,
            attachments=(Attachment("offsite.md", "text/markdown", notes),),
        )
        assert "Lisbon" in reply_prompt(fake_model, question)


async def test_a_redelivered_message_stores_its_document_once(
    make_settings: SettingsFactory, database_url: str
) -> None:
    shared = Inbound(
        GENERAL,
        ALICE,
        "",
        message_id="m-1",
        facts=Facts(mentioned=True),
        attachments=(Attachment("notes.md", "text/markdown", b"# Notes\n\nThe budget is 40k.\n"),),
    )
    async with parley_on(make_settings, database_url) as parley:
        [first] = await through_pipeline(parley, [shared])
        again = await parley.accept(shared, Route("test", "2"))
        await parley.record(shared)
        async with AsyncSession(parley.store.engine) as session:
            documents = await session.scalar(select(func.count()).select_from(Document))
    assert "notes.md" in first.text and again.verdict is Verdict.IGNORE
    assert documents == 1


async def test_unreadable_files_are_reported_not_raised(
    make_settings: SettingsFactory, database_url: str
) -> None:
    async with parley_on(make_settings, database_url) as parley:
        broken = await ask(
            parley,
            key=GENERAL,
            author=ALICE,
            text="",
            attachments=(Attachment("broken.pdf", "application/pdf", b"%PDF-1.4 nonsense"),),
        )
        assert "broken.pdf" in broken.text and "couldn't read" in broken.text
        with pytest.raises(UnreadableDocument) as empty:  # `parley memory add-file` says it
            await parley.add_document(GENERAL, ALICE, "empty.txt", b"  \n\n ")
        assert "no text" in explain(empty.value)
        ignored = await ask(
            parley,
            key=GENERAL,
            author=ALICE,
            text="",
            attachments=(Attachment("photo.png", "image/png", b"\x89PNG"),),
        )
        assert ignored.outcome == Outcome.EMPTY


def test_long_text_is_split_into_bounded_passages(make_settings: SettingsFactory) -> None:
    from memory.tokens import TokenCounter

    counter = TokenCounter("gpt-4o-mini")
    text = "Short intro.\n\n" + " ".join(f"word{i}" for i in range(2000)) + "\n\nThe end."
    passages = split_passages(text, counter, limit=100)
    assert passages[0].startswith("Short intro.") and passages[-1].endswith("The end.")
    assert all(counter.count(p) <= 110 for p in passages)
    assert "word1999" in " ".join(passages)
