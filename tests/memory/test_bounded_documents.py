"""Bounded documents: page, character and passage caps (the person is told), PDFs read in a
child process with a time limit and outside the conversation's lock, and PostgreSQL indexing
only a bounded prefix of very long content."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Attachment, Inbound
from bot.texts import say
from memory.db import migrated_engine
from memory.search import FullText
from memory.store import Store
from memory.tables import Message
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.fakes.pdf import make_pages
from tests.helpers import ALICE, BOB, GENERAL, ask, parley_on


def pdf(name: str, pages: list[list[str]]) -> Attachment:
    return Attachment(name, "application/pdf", make_pages(pages))


async def recallable(parley: object, word: str) -> int:
    conversation = await parley.store.conversation(GENERAL)  # type: ignore[attr-defined]
    search = FullText(parley.store.engine)  # type: ignore[attr-defined]
    return len(await search.passages([conversation.id], [word], 10))


async def test_long_documents_are_cut_and_the_person_told(
    make_settings: SettingsFactory, database_url: str
) -> None:
    limits = {"document_max_pages": 2, "document_max_chars": 1000, "document_max_passages": 3}
    manual = pdf("manual.pdf", [["alpha page one"], ["bravo page two"], ["charlie page three"]])
    notes = Attachment("notes.txt", "text/plain", b"delta " * 600 + b"echo " * 40)
    blob = Attachment("blob.md", "text/markdown", ("x" * 2000 + " foxtrot").encode())
    async with parley_on(make_settings, database_url, **limits) as parley:
        told = [
            (await ask(parley, "", key=GENERAL, author=ALICE, attachments=(file,))).text
            for file in (manual, notes)
        ]
        many = await ask(
            parley,
            "",
            key=GENERAL,
            author=ALICE,
            attachments=(Attachment("many.md", "text/markdown", b"\n\n".join([b"w " * 100] * 5)),),
        )
        await ask(parley, "", key=GENERAL, author=ALICE, attachments=(blob,))

        assert say("document.cut_pages", filename="manual.pdf", limit="2") in told[0]
        assert say("document.cut_chars", filename="notes.txt", limit="1,000") in told[1]
        assert say("document.cut_passages", filename="many.md", limit="3") in many.text
        assert await recallable(parley, "bravo") == 1 and await recallable(parley, "charlie") == 0
        assert await recallable(parley, "delta") == 1 and await recallable(parley, "echo") == 0


async def test_slow_pdf_is_stopped_and_does_not_hold_the_conversation(
    make_settings: SettingsFactory, fake_model: FakeModel, sqlite_url: str
) -> None:
    big = pdf("big.pdf", [[f"line {i} of page {p}" for i in range(40)] for p in range(300)])
    async with parley_on(make_settings, sqlite_url, document_timeout=30.0) as parley:
        reading = asyncio.create_task(
            ask(parley, "summarize", key=GENERAL, author=ALICE, attachments=(big,))
        )
        await asyncio.sleep(0.1)  # the PDF is being read now
        quick = await ask(parley, "meanwhile, hello", key=GENERAL, author=BOB)
        assert not quick.failed and not reading.done()  # answered while the PDF is read
        assert "big.pdf" in (await reading).text

    async with parley_on(make_settings, sqlite_url, document_timeout=0.05) as parley:
        started = asyncio.get_running_loop().time()
        told = await ask(parley, "", key=GENERAL, author=ALICE, attachments=(big,))
        assert asyncio.get_running_loop().time() - started < 5
        assert say("document.unreadable", filename="big.pdf", reason="").rstrip(".") in told.text
        assert "took too long" in told.text


def _distinct_korean_words(count: int) -> str:
    def syllable(n: int) -> str:
        return chr(0xAC00 + n % 11172)

    return " ".join(syllable(i) + syllable(i // 11172 * 101 + 7) + "다" for i in range(count))


async def test_very_long_messages_are_stored_and_found(
    make_settings: SettingsFactory, database_url: str
) -> None:
    # Over 1 MB of tsvector: PostgreSQL refused the whole row before the prefix bound.
    text = "kumquat " + " ".join(f"w{i}x" for i in range(200_000))
    async with parley_on(make_settings, database_url) as parley:
        await parley.record(Inbound(GENERAL, ALICE, text))
        conversation = await parley.store.conversation(GENERAL)
        hits = await FullText(parley.store.engine).messages([conversation.id], ["kumquat"], 5)
        assert len(hits) == 1


async def test_the_index_bound_holds_for_korean_content_and_terms(database_url: str) -> None:
    # The densest case: distinct Korean words (over 4 bytes of tsvector per character) in both
    # the content and its analyzed terms, written directly (analyzing this much takes long).
    korean = "부산 " + _distinct_korean_words(80_000)
    async with migrated_engine(database_url) as engine:
        conversation = await Store(engine).conversation(GENERAL)
        async with AsyncSession(engine) as session, session.begin():
            session.add(
                Message(
                    conversation_id=conversation.id,
                    role="user",
                    author_id="u",
                    author_name="민지",
                    content=korean,
                    tokens=1,
                    terms=korean,
                )
            )
        hits = await FullText(engine).messages([conversation.id], ["부산"], 5)
        assert len(hits) == 1
