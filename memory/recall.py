"""Recall: excerpts of older messages (outside the window) and of shared documents that bear on
the new message, placed in the prompt within their own share of the budget."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.messages import Inbound
from bot.prompt import Section
from bot.texts import say
from memory.embeddings import SemanticRanking
from memory.search import FullText, Hit, query_terms
from memory.store import AFTER_ALL, ConversationState, Store
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter

log = logging.getLogger(__name__)

# Candidates fetched per list; more than ever fit, so the share decides.
_CANDIDATES = 12
# One long message must not take the whole share.
_EXCERPT_TOKENS = 250
_EXCERPT_CHARS = 4 * _EXCERPT_TOKENS
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


@dataclass(frozen=True)
class RecallConfig:
    share: float  # of the message budget, for excerpts
    window_share: float  # of the message budget left to the window by every provider
    workspace: bool  # recall may look in other conversations of the same workspace


class RecallProvider:
    def __init__(
        self,
        store: Store,
        search: FullText,
        counter: TokenCounter,
        config: RecallConfig,
        semantic: SemanticRanking | None = None,
    ) -> None:
        self.store = store
        self.search = search
        self.semantic = semantic  # None: keyword ranking only
        self.counter = counter
        self.config = config

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]:
        share = int(budget * self.config.share) - TOKENS_PER_MESSAGE
        terms = await query_terms(message.text)
        if share <= 0 or not (terms or self.semantic):
            return []
        # Where the window will start if every provider uses its full share: recalling only
        # below it leaves no gap between recalled excerpts and the window.
        start = await self.store.window_start(
            conversation, AFTER_ALL, int(budget * self.config.window_share), TOKENS_PER_MESSAGE
        )
        rankings = [
            await self.search.messages(
                [conversation.id], terms, _CANDIDATES, conversation.reset_after, start
            )
        ]
        others = (
            await self.store.workspace_conversations(conversation.id)
            if self.config.workspace
            else []
        )
        if others:
            rankings.append(await self.search.messages(others, terms, _CANDIDATES))
        rankings.append(await self.search.passages([conversation.id, *others], terms, _CANDIDATES))
        if self.semantic is not None:
            rankings.append(
                await self.semantic.rank(
                    message.text,
                    conversation,
                    start,
                    [conversation.id, *others],
                    [hit for ranking in rankings for hit in ranking],
                    _CANDIDATES,
                )
            )
        hits = fuse(rankings)
        section = self._section(hits, share)
        if section is not None:
            log.debug("recalled into %s: %d tokens", conversation.id, section.tokens)
        return [] if section is None else [section]

    def _section(self, hits: list[Hit], share: int) -> Section | None:
        """The best hits that fit `share`, in time order (documents last)."""
        header = say("recall.header")
        spent = self.counter.count(header)
        chosen: list[tuple[Hit, str]] = []
        for hit in hits:
            line = self._excerpt(hit)
            tokens = self.counter.count(line) + 1  # the line break
            if spent + tokens <= share:
                chosen.append((hit, line))
                spent += tokens
        chosen.sort(key=lambda c: (c[0].filename is not None, c[0].created_at, c[0].id))
        # Joined text can tokenize differently from its parts: count it as sent, and drop the
        # least relevant excerpt while it does not fit.
        while chosen:
            text = "\n".join([header, *(line for _hit, line in chosen)])
            tokens = self.counter.count(text)
            if tokens <= share:
                return Section({"role": "system", "content": text}, tokens)
            chosen.remove(max(chosen, key=lambda c: hits.index(c[0])))
        return None

    def _excerpt(self, hit: Hit) -> str:
        content = self.counter.truncate(hit.content[:_EXCERPT_CHARS], _EXCERPT_TOKENS)
        if content != hit.content:
            content += " …"
        if hit.filename is not None:
            return say(
                "recall.passage",
                filename=hit.filename,
                author=hit.author_name,
                when=f"{hit.created_at:%Y-%m-%d}",
                text=content,
            )
        return say(
            "recall.message",
            author=hit.author_name,
            when=f"{hit.created_at:%Y-%m-%d %H:%M}",
            text=content,
        )
