"""Recall's retrieval: the older messages (outside the window) and document passages that bear on
a new message, best first. bot/recall.py fits them into the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from memory.context import TIME_WORDS, Surroundings, completing, named, period_asked
from memory.embeddings import SemanticRanking
from memory.recall_query import Found, RecallQuery
from memory.search import FullText, Hit, query_terms
from memory.store import ConversationState, Store
from memory.tokens import TOKENS_PER_MESSAGE

# Candidates fetched per list; more than ever fit, so the prompt's share decides.
_CANDIDATES = 12
# A time-relative question looks around this many best matches, taking this many from each.
_ANCHORS = 2
_PER_ANCHOR = 4
# When the question names whose doings it asks about: that person's turns in the period.
_PER_SPEAKER = 10
# "The day after the concert" is not the concert's evening (that exchange comes as adjacent turns).
_LATER = timedelta(hours=3)
# Reciprocal rank fusion constant (Cormack et al.): damps the weight of the very first ranks.
_RRF_K = 60
# At equal rank a keyword match weighs a little more than similarity of meaning: every message
# is somewhat similar to any question, so the semantic ranking is never short of weak entries.
# (Measured with multilingual-e5-small, bench/README.md: 1.0 lets them crowd out answers that
# keywords found, in Korean; 0.8 and 0.9 do not.)
_SEMANTIC_WEIGHT = 0.9


@dataclass(frozen=True)
class Recalled:
    """A relevant message or passage, with the adjacent turns of its exchange (time order)."""

    hit: Hit
    turns: tuple[Hit, ...]
    score: float  # fused: higher is more relevant; several rankings agreeing add up


def fuse(
    rankings: Sequence[Sequence[Hit]], weights: Sequence[float] = ()
) -> list[tuple[Hit, float]]:
    """Merge ranked lists by (weighted) reciprocal rank fusion, best first, with scores; a hit
    in several lists adds up. Lists without a weight weigh 1."""
    scores: dict[tuple[bool, int], float] = {}
    hits: dict[tuple[bool, int], Hit] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if index < len(weights) else 1.0
        for rank, hit in enumerate(ranking):
            key = (hit.filename is not None, hit.id)
            scores[key] = scores.get(key, 0.0) + weight / (_RRF_K + rank)
            hits[key] = hit
    return [(hits[key], scores[key]) for key in sorted(scores, key=lambda k: -scores[k])]


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
        self.surroundings = Surroundings(store.engine)
        self.query = RecallQuery(store.engine)
        self.workspace = workspace
        self.semantic = semantic

    async def hits(
        self, conversation: ConversationState, text: str, window_tokens: int
    ) -> list[Recalled]:
        """Messages and passages relevant to `text`, best first, from below the window as it
        starts when it has `window_tokens` (no gap between recalled excerpts and the window),
        each with the adjacent turns that complete it."""
        terms = await query_terms(text)
        if not (terms or self.semantic):
            return []
        others = await self.store.workspace_conversations(conversation.id) if self.workspace else []
        found = await self.query.find(
            conversation,
            terms,
            _CANDIDATES,
            (window_tokens, TOKENS_PER_MESSAGE),
            [conversation.id, *others],
        )
        start = found.start
        period = await self._period(conversation, text, terms, start)
        rankings = [found.hits, period]
        if others:
            rankings.append(await self.search.messages(others, terms, _CANDIDATES))
        if found.documents:
            rankings.append(
                await self.search.passages([conversation.id, *others], terms, _CANDIDATES)
            )
        # What was said in the period a question asks about is matched on its event and its time
        # at once: it weighs double.
        weights = [1.0, 2.0] + [1.0] * (len(rankings) - 2)
        if self.semantic is not None:
            weights.append(_SEMANTIC_WEIGHT)
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
        # All of the period stays a candidate, and so do the semantic ranking's own: they must
        # not push the keyword candidates out (the share decides what fits).
        kept = _CANDIDATES + len(period) + (_CANDIDATES if self.semantic is not None else 0)
        return await self._with_turns(conversation, fuse(rankings, weights)[:kept], found, start)

    async def _with_turns(
        self,
        conversation: ConversationState,
        fused: list[tuple[Hit, float]],
        found: Found,
        start: int,
    ) -> list[Recalled]:
        """Each hit with the adjacent turns that complete it."""
        own = [
            hit
            for hit, _score in fused
            if hit.conversation_id == conversation.id and hit.filename is None
        ]
        # The turns next to the keyword hits came with them; others' are read now.
        adjacent = {
            hit.id: completing(hit, *found.turns[hit.id]) for hit in own if hit.id in found.turns
        }
        missing = [hit for hit in own if hit.id not in found.turns]
        if missing:
            adjacent |= await self.surroundings.adjacent(
                conversation.id, missing, conversation.reset_after, start
            )
        return [
            Recalled(hit, tuple(sorted([hit, *adjacent.get(hit.id, [])], key=_order)), score)
            for hit, score in fused
        ]

    async def _period(
        self,
        conversation: ConversationState,
        text: str,
        terms: list[str],
        start: int,
    ) -> list[Hit]:
        """For a question about a time relative to an event ("the week after the trip"): what
        was said in the period after (or before) the best-matching messages. When the question
        names a speaker, their first turns there, and their own events are the anchors."""
        asked = period_asked(text, terms)
        if asked is None:
            return []
        direction, span = asked
        # Planned as the main read found the conversation (memory/ranking.py `dense`).
        dense = self.query.dense(conversation.id)
        # The event is what the question names besides its time words ("the trip", not "after").
        events = await self.search.messages(
            [conversation.id],
            [term for term in terms if term not in TIME_WORDS],
            _CANDIDATES,
            conversation.reset_after,
            start,
            dense,
        )
        speakers = named(events, text, terms)
        anchors = sorted(events, key=lambda hit: hit.author_name not in speakers)
        anchors = anchors[: 1 if speakers else _ANCHORS]
        found: list[Hit] = []
        for anchor in anchors:
            when = anchor.created_at
            begin, end = (
                (when + _LATER, when + span)
                if direction == "after"
                else (when - span, when - _LATER)
            )
            ids = await self.surroundings.period(conversation.id, begin, end, dense)
            if ids is None:
                continue
            low, high = max(ids[0], conversation.reset_after), min(ids[1], start)
            found += (
                await self.surroundings.spoken_by(
                    conversation.id, speakers, low, high, direction == "after", _PER_SPEAKER
                )
                if speakers
                else await self.search.messages(
                    [conversation.id], terms, _PER_ANCHOR, low, high, dense
                )
            )
        return [hit for hit in found if hit.id not in {a.id for a in anchors}]


def _order(hit: Hit) -> int:
    return hit.id
