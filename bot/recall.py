"""Recall in the prompt: excerpts of older messages and of shared documents that bear on the new
message (found by memory/recall.py), within their own share of the budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.messages import Inbound
from bot.prompt import Section
from bot.quoting import quote
from bot.texts import say
from memory.bounded import Bounded
from memory.recall import Recall, Recalled
from memory.search import Hit
from memory.speakers import escape_lines, speaker_name
from memory.store import ConversationState
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter, render

log = logging.getLogger(__name__)

# One long message must not take the whole share.
_EXCERPT_TOKENS = 250
_EXCERPT_CHARS = 4 * _EXCERPT_TOKENS
# An excerpt two rankings agree on scores at least this (reciprocal rank fusion, k = 60: one
# list alone gives at most 1/60); this many such excerpts double the share.
_AGREED = 1.5 / 60
_AGREED_FOR_DOUBLE = 4
# Authors whose excerpt headers are remembered (see RecallProvider._headers).
_HEADERS = 1024


@dataclass(frozen=True)
class RecallConfig:
    share: float  # of the message budget, for excerpts
    window_share: float  # of the message budget left to the window by every provider


def _is_asked(hit: Hit, asked: str) -> bool:
    return hit.filename is None and hit.content.strip() == asked


class RecallProvider:
    """Places recalled excerpts, each with the adjacent turns of its exchange, dated and with
    their speaker, in time order (documents last).

    The share adapts to how much older history is relevant: it starts from
    PARLEY_RECALL_SHARE of the budget and grows, up to twice that (never over half the budget),
    by one part per excerpt that several rankings agree on (keywords, the period of a
    time-relative question, semantic similarity); whatever recall does not use is left to the
    window. The window then stops above the newest recalled message, so no excerpt repeats it.
    """

    def __init__(self, recall: Recall, counter: TokenCounter, config: RecallConfig) -> None:
        self.recall = recall
        self.counter = counter
        self.config = config
        # Tokens of an excerpt's header less what the window adds to a stored message, by
        # (author, filename, role); dates are alike.
        self._headers: Bounded[tuple[str, str | None, str | None], int] = Bounded(_HEADERS)

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]:
        base = int(budget * self.config.share)
        if base <= TOKENS_PER_MESSAGE:
            return []
        # Where the window will start if every provider uses its full share.
        window = int(budget * self.config.window_share)
        # The message being answered is stored already: never quote it back to itself, as a
        # hit or as a turn next to one.
        asked = message.text.strip()
        recalled = [
            _without(found, asked)
            for found in await self.recall.hits(conversation, message.text, window)
            if not _is_asked(found.hit, asked)
        ]
        agreed = sum(r.score >= _AGREED for r in recalled)
        share = min(base + base * agreed // _AGREED_FOR_DOUBLE, 2 * base, budget // 2)
        section = self._section(conversation.id, recalled, share - TOKENS_PER_MESSAGE)
        if section is not None:
            log.debug("recalled into %s: %d tokens", conversation.id, section.tokens)
        return [] if section is None else [section]

    def _section(
        self, conversation_id: int, recalled: list[Recalled], share: int
    ) -> Section | None:
        """The most relevant excerpts (with their adjacent turns) that fit `share`."""
        what = say("recall.header")
        spent = self.counter.count(quote(what, ""))
        # Chosen on estimates (stored token counts: no tokenizing of every candidate), then the
        # joined text is counted exactly.
        picked: dict[tuple[bool, int], tuple[Hit, int]] = {}  # by (passage?, id): hit, rank
        for rank, item in enumerate(recalled):
            new = [t for t in item.turns if _key(t) not in picked]
            tokens = sum(self._estimate(t) for t in new)
            if new and spent + tokens <= share:
                picked.update((_key(t), (t, rank)) for t in new)
                spent += tokens
        # Time order, documents last.
        lines = [(hit, self._excerpt(hit), rank) for _place, (hit, rank) in sorted(picked.items())]
        # Joined text can tokenize differently from its parts: count it as sent, and drop the
        # least relevant excerpt while it does not fit.
        while lines:
            text = quote(what, "\n".join(line for _hit, line, _rank in lines))
            tokens = self.counter.count(text)
            if tokens <= share:
                floor = max(
                    (
                        hit.id
                        for hit, _line, _rank in lines
                        if hit.filename is None and hit.conversation_id == conversation_id
                    ),
                    default=0,
                )
                return Section({"role": "user", "content": text}, tokens, floor)
            worst = max(rank for _hit, _line, rank in lines)
            lines = [chosen for chosen in lines if chosen[2] != worst]
        return None

    def _estimate(self, hit: Hit) -> int:
        """Tokens of `hit`'s excerpt line and its line break: its stored count (cut at
        _EXCERPT_TOKENS), less what the window adds to it (a person's name), plus its header."""
        if not hit.tokens:
            return self.counter.count(self._excerpt(hit)) + 1
        key = (hit.author_name, hit.filename, hit.role)
        header = self._headers.get(key)
        if header is None:
            named = self.counter.count(render(hit.role, hit.author_name, "")) if hit.role else 0
            header = self.counter.count(self._excerpt(hit._replace(content=""))) - named
            self._headers.put(key, header)
        return header + min(hit.tokens, _EXCERPT_TOKENS + 1) + 1

    def _excerpt(self, hit: Hit) -> str:
        content = hit.content
        # A stored count within the limit needs no tokenizing (it holds the content's).
        if not (0 < hit.tokens <= _EXCERPT_TOKENS and len(content) <= _EXCERPT_CHARS):
            content = self.counter.truncate(content[:_EXCERPT_CHARS], _EXCERPT_TOKENS)
            if content != hit.content:
                content += " …"
        # One line per excerpt: its text and names cannot start a line of their own.
        content, author = escape_lines(content), speaker_name(hit.author_name)
        if hit.filename is not None:
            return say(
                "recall.passage",
                filename=speaker_name(hit.filename),
                author=author,
                when=hit.created_at.isoformat()[:10],
                text=content,
            )
        return say(
            "recall.message",
            author=author,
            # As strftime's "%Y-%m-%d %H:%M", a quarter of its cost (dozens per message).
            when=hit.created_at.isoformat(" ", "minutes")[:16],
            text=content,
        )


def _key(hit: Hit) -> tuple[bool, int]:
    return hit.filename is not None, hit.id


def _without(found: Recalled, asked: str) -> Recalled:
    """`found` without the message being answered among its turns."""
    turns = tuple(t for t in found.turns if not _is_asked(t, asked))
    return found if len(turns) == len(found.turns) else replace(found, turns=turns)
