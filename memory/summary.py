"""Storage of the rolling summary of what left the window (bot/summary.py writes and shows it)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.store import ConversationState
from memory.tables import Summary, utcnow


@dataclass(frozen=True)
class SummaryState:
    content: str
    covers_until: int  # id of the newest message the summary covers


class Summaries:
    """Storage: one summary per conversation."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    async def get(self, conversation: ConversationState) -> SummaryState | None:
        """The summary, unless the conversation was reset after what it covers."""
        async with self._session() as session:
            row = await session.get(Summary, conversation.id)
        if row is None or row.covers_until <= conversation.reset_after:
            return None
        return SummaryState(row.content, row.covers_until)

    async def save(self, conversation_id: int, state: SummaryState) -> None:
        async with self._session() as session, session.begin():
            await session.merge(
                Summary(
                    conversation_id=conversation_id,
                    content=state.content,
                    covers_until=state.covers_until,
                    updated_at=utcnow(),
                )
            )
