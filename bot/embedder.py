"""Embeddings from the chat endpoint's `/v1/embeddings` for semantic recall (memory/embeddings.py
stores and ranks them), and the listener that indexes a conversation after each reply."""

from __future__ import annotations

import asyncio
import logging

from bot.chat import ChatClient, ChatError
from bot.messages import Outcome
from bot.prompt import Prompt
from memory.embeddings import Indexer, pack
from memory.store import ConversationState

log = logging.getLogger(__name__)

# Embedding models take a few hundred tokens at most; recalled excerpts are shorter still.
_EMBED_CHARS = 2_000
# The question is embedded while the person waits: one short attempt, else keyword-only.
QUESTION_TIMEOUT = 3.0
# The endpoint will not embed, whatever we send: stop asking until restart.
_FOR_GOOD = frozenset({Outcome.BAD_REQUEST, Outcome.MODEL_NOT_FOUND, Outcome.AUTH})


class Embedder:
    """Packed vectors for texts, or None when the endpoint fails (logged once)."""

    def __init__(self, chat: ChatClient, model: str) -> None:
        self.chat = chat
        self.model = model
        self.off = False  # the endpoint refused embeddings for good
        self._warned = False

    async def embed(self, texts: list[str], waiting: bool = False) -> list[bytes] | None:
        """With `waiting` (a person waits for the reply): one attempt, within QUESTION_TIMEOUT."""
        if self.off:
            return None
        texts = [text[:_EMBED_CHARS] for text in texts]
        try:
            async with asyncio.timeout(QUESTION_TIMEOUT if waiting else None):
                vectors = await self.chat.embed(self.model, texts, retries=not waiting)
        except (ChatError, TimeoutError) as exc:
            self.off = isinstance(exc, ChatError) and exc.outcome in _FOR_GOOD
            log.log(
                logging.DEBUG if self._warned else logging.WARNING,
                "embedding with %s failed (%s); %s",
                self.model,
                str(exc) or "timed out",
                "semantic recall is off until restart, keyword recall goes on"
                if self.off
                else "keyword recall only until it works again",
            )
            self._warned = True
            return None
        if len(vectors) != len(texts):
            log.warning(
                "the endpoint returned %d embeddings for %d texts; ignored",
                len(vectors),
                len(texts),
            )
            return None
        return [pack(vector) for vector in vectors]


class IndexAfterReply:
    """A ReplyListener: embeds what the conversation gained (and any backlog, bounded)."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None:
        await self.indexer.index(conversation.id)
