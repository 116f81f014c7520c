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
# Failures after which the endpoint is taken not to embed at all (404: no such route or model,
# 500: e.g. llama-cpp-python started without --embedding, 400: not an embedding model).
_OFF_AFTER = 3
_REFUSALS = frozenset({Outcome.BAD_REQUEST, Outcome.MODEL_NOT_FOUND, Outcome.SERVER_ERROR})


class Embedder:
    """Packed vectors for texts, one per text, or None when the endpoint fails.

    A key the endpoint refuses switches semantic recall off at once; an endpoint that answers
    embeddings with 404/500/400 a few times in a row, too: each time with one warning. A server
    sending one vector per token gets one text per request (llama-cpp-python answers batches
    of them wrongly) and its vectors are averaged.
    """

    def __init__(self, chat: ChatClient, model: str) -> None:
        self.chat = chat
        self.model = model
        self.off = False  # the endpoint refused embeddings for good
        self.per_token = False
        self._refusals = 0
        self._warned = False

    async def embed(self, texts: list[str], waiting: bool = False) -> list[bytes] | None:
        """With `waiting` (a person waits for the reply): one attempt, within QUESTION_TIMEOUT."""
        if self.off:
            return None
        texts = [text[:_EMBED_CHARS] for text in texts]
        try:
            async with asyncio.timeout(QUESTION_TIMEOUT if waiting else None):
                if self.per_token:
                    vectors = [v for t in texts for v in await self._vectors([t], waiting)]
                else:
                    vectors = await self._vectors(texts, waiting)
        except (ChatError, TimeoutError) as exc:
            self._failed(exc)
            return None
        self._refusals = 0
        if len(vectors) != len(texts):
            log.warning(
                "the endpoint returned %d embeddings for %d texts; ignored",
                len(vectors),
                len(texts),
            )
            return None
        return [pack(vector) for vector in vectors]

    async def _vectors(self, texts: list[str], waiting: bool) -> list[list[float]]:
        found = await self.chat.embed(self.model, texts, waiting=waiting)
        if found.per_token and not self.per_token:
            self.per_token = True
            log.warning(
                "the endpoint returns one embedding per token for %s (llama-cpp-python without "
                "pooling?): averaging them, one text per request. Serve pooled embeddings "
                "(llama-server --embeddings --pooling mean) for better recall.",
                self.model,
            )
            if len(texts) > 1:  # this batch's vectors past the first are not to be trusted
                return [v for t in texts for v in await self._vectors([t], waiting)]
        return found.vectors

    def _failed(self, exc: ChatError | TimeoutError) -> None:
        refused = isinstance(exc, ChatError) and exc.outcome in _REFUSALS
        self._refusals = self._refusals + 1 if refused else 0
        self.off = (isinstance(exc, ChatError) and exc.outcome is Outcome.AUTH) or (
            self._refusals >= _OFF_AFTER
        )
        if self.off:
            log.warning(
                "embedding with %s failed (%s); semantic recall is off until restart, keyword "
                "recall goes on. Unset PARLEY_EMBEDDING_MODEL or serve embeddings at "
                "OPENAI_BASE_URL.",
                self.model,
                str(exc) or "timed out",
            )
            return
        log.log(
            logging.INFO if refused else logging.DEBUG if self._warned else logging.WARNING,
            "embedding with %s failed (%s); keyword recall only until it works again",
            self.model,
            str(exc) or "timed out",
        )
        self._warned = self._warned or not refused


class IndexAfterReply:
    """A ReplyListener: embeds what the conversation gained (and any backlog, bounded)."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None:
        await self.indexer.index(conversation.id)
