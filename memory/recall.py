"""Recall's retrieval: the older messages (outside the window) and document passages that bear on
a new message, best first. bot/recall.py fits them into the prompt."""

from __future__ import annotations

from collections.abc import Sequence

from memory.embeddings import SemanticRanking
from memory.search import FullText, Hit, search_terms
from memory.store import AFTER_ALL, ConversationState, Store
from memory.tokens import TOKENS_PER_MESSAGE

# Candidates fetched per list; more than ever fit, so the prompt's share decides.
_CANDIDATES = 12
# Reciprocal rank fusion constant (Cormack et al.): damps the weight of the very first ranks.
_RRF_K = 60


def fuse(rankings: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Merge ranked lists by reciprocal rank fusion; a hit in several lists adds up."""
    scores: dict[tuple[bool, int], float] = {}
    hits: dict[tuple[bool, int], Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            key = (hit.filename is not None, hit.id)
            scores[key] = scores.get(key, 0.0) + 1.0 / (_RRF_K + rank)
            hits[key] = hit
    return [hits[key] for key in sorted(scores, key=lambda k: -scores[k])]


class Recall:
    def __init__(
        self,
        store: Store,
        search: FullText,
        workspace: bool,  # may look in other conversations of the same workspace
        semantic: SemanticRanking | None = None,  # None: keyword ranking only
    ) -> None:
        self.store = store
        self.search = search
        self.workspace = workspace
        self.semantic = semantic

    async def hits(
        self, conversation: ConversationState, text: str, window_tokens: int
    ) -> list[Hit]:
        """Messages and passages relevant to `text`, best first, from below the window as it
        starts when it has `window_tokens` (no gap between recalled excerpts and the window)."""
        terms = search_terms(text)
        if not (terms or self.semantic):
            return []
        start = await self.store.window_start(
            conversation, AFTER_ALL, window_tokens, TOKENS_PER_MESSAGE
        )
        rankings = [
            await self.search.messages(
                [conversation.id], terms, _CANDIDATES, conversation.reset_after, start
            )
        ]
        others = await self.store.workspace_conversations(conversation.id) if self.workspace else []
        if others:
            rankings.append(await self.search.messages(others, terms, _CANDIDATES))
        rankings.append(await self.search.passages([conversation.id, *others], terms, _CANDIDATES))
        if self.semantic is not None:
            rankings.append(
                await self.semantic.rank(
                    text,
                    conversation,
                    start,
                    [conversation.id, *others],
                    [hit for ranking in rankings for hit in ranking],
                    _CANDIDATES,
                )
            )
        return fuse(rankings)
