"""Korean, Chinese and Japanese search: analyzed words on both sides, on a real SQLite file and
the real PostgreSQL (the same hits on both), and the migration that re-indexes old databases."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.analysis import index_terms
from memory.db import create_engine, migrate
from memory.documents import Documents, NewDocument
from memory.extract import Limits
from memory.search import FullText, search_terms
from memory.store import NewMessage, Store
from memory.tokens import TokenCounter
from tests.helpers import GENERAL, old_conversation, old_message

NOODLES = "어제 민수랑 서울에서 냉면 먹었어요"
MEETING = "我们明天去北京开会，别忘了带电脑。"  # noqa: RUF001 (real CJK punctuation)
TOKYO = "来週の月曜日に東京都庁で打ち合わせがあります。"
FILLER = ("오늘 날씨가 좋네요", "점심은 뭐 먹을까요?", "Let's ship the release on Friday.")


def test_particles_and_endings_reduce_to_the_same_words() -> None:
    assert search_terms("서울에서") == search_terms("서울") == ["서울"]
    assert search_terms("먹었어요") == search_terms("먹다") == ["먹다"]
    assert search_terms("민수는 먹었니?") == ["민수", "먹다"]
    stored = (index_terms(NOODLES) or "").split()
    assert {"서울", "먹다", "민수", "냉면"} <= set(stored)
    assert "에서" not in stored  # particles are not words
    assert index_terms("plain English only") is None  # no analysis, no extra column


def test_chinese_and_japanese_are_bigrams() -> None:
    assert search_terms("北京") == ["北京"]
    assert {"北京", "开会"} <= set((index_terms(MEETING) or "").split())
    assert {"東京", "京都"} <= set(search_terms("東京都"))


async def _stored(engine: AsyncEngine) -> tuple[int, dict[str, int]]:
    store = Store(engine)
    conversation = await store.conversation(GENERAL)
    ids: dict[str, int] = {}
    for content in (*FILLER, NOODLES, MEETING, TOKYO, "We are launching the beta soon."):
        added = await store.add(conversation.id, NewMessage("user", "u", "민지", content, 9))
        assert added is not None
        ids[content] = added
    return conversation.id, ids


async def _found(engine: AsyncEngine, conversation_id: int, question: str) -> list[str]:
    hits = await FullText(engine).messages([conversation_id], search_terms(question), 3)
    return [hit.content for hit in hits]


async def test_korean_questions_find_other_word_forms(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        conversation_id, _ids = await _stored(engine)
        for question in ("민수가 서울 가서 뭐 먹었지?", "냉면은 누구랑 먹었어?", "서울"):
            assert (await _found(engine, conversation_id, question))[0] == NOODLES, question
        assert (await _found(engine, conversation_id, "北京的会议是什么时候？"))[0] == MEETING  # noqa: RUF001
        assert (await _found(engine, conversation_id, "東京での打ち合わせは？"))[0] == TOKYO  # noqa: RUF001
        assert (await _found(engine, conversation_id, "电"))[0] == MEETING  # one character
        # English is stemmed the same way on both databases.
        assert await _found(engine, conversation_id, "when is the launch?") == [
            "We are launching the beta soon."
        ]
    finally:
        await engine.dispose()


async def test_korean_document_passages_are_analyzed(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        conversation = await Store(engine).conversation(GENERAL)
        documents = Documents(engine, TokenCounter("gpt-4o"), Limits())
        body = "회의록\n\n다음 분기 예산은 부산 지사에서 결정했습니다.\n\n기타 안건 없음."
        read = await documents.read("회의.md", body.encode())
        await documents.store(NewDocument(conversation.id, "u", "민지", "회의.md"), read)
        hits = await FullText(engine).passages([conversation.id], search_terms("부산 예산 결정"), 3)
        assert hits and "부산 지사에서" in hits[0].content
    finally:
        await engine.dispose()


async def _old_index_holds(engine: AsyncEngine, word: str) -> int:
    """Messages the index of revision 0005 finds for `word` (today's search reads the index of
    the current schema)."""
    query = (
        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH :word"
        if engine.dialect.name == "sqlite"
        else "SELECT count(*) FROM messages WHERE search @@ to_tsquery('simple', :word)"
    )
    async with engine.connect() as connection:
        return int((await connection.execute(text(query), {"word": word})).scalar_one())


async def test_migration_reindexes_an_existing_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "0005")
        conversation_id = await old_conversation(engine, GENERAL)
        for content in (*FILLER, NOODLES, MEETING):
            await old_message(engine, conversation_id, content)
        assert await _old_index_holds(engine, "서울") == 0  # 서울에서 was one chunk
        await migrate(engine)
        assert (await _found(engine, conversation_id, "서울에서 뭐 먹었어?"))[0] == NOODLES
        assert (await _found(engine, conversation_id, "北京"))[0] == MEETING
        async with engine.connect() as connection:
            analyzed = await connection.execute(
                text("SELECT count(*) FROM messages WHERE terms IS NOT NULL")
            )
            assert analyzed.scalar_one() == 4  # the Korean and Chinese rows, not the English one
    finally:
        await engine.dispose()
