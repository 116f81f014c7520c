"""Storage of the rolling summary of what left the window (bot/summary.py writes and shows it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from memory.store import ConversationState, SummaryState
from memory.tables import Summary, utcnow

__all__ = ["Summaries", "SummaryState"]


class Summaries:
    """Storage: one summary per conversation."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._session = async_sessionmaker(engine, expire_on_commit=False)

    async def get(
        self, conversation: ConversationState, fresh: bool = False
    ) -> SummaryState | None:
        """The summary, unless the conversation was reset after what it covers: as read with
        the conversation when it was (not `fresh`), from the database otherwise."""
        if conversation.summary_read and not fresh:
            state = conversation.summary
        else:
            async with self._session() as session:
                row = await session.get(Summary, conversation.id)
            state = None if row is None else SummaryState(row.content, row.covers_until)
        if state is None or state.covers_until <= conversation.reset_after:
            return None
        return state

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
