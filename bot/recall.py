"""Recall in the prompt: excerpts of older messages and of shared documents that bear on the new
message (found by memory/recall.py), within their own share of the budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.messages import Inbound
from bot.prompt import Section
from bot.texts import say
from memory.recall import Recall
from memory.search import Hit
from memory.store import ConversationState
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter

log = logging.getLogger(__name__)

# One long message must not take the whole share.
_EXCERPT_TOKENS = 250
_EXCERPT_CHARS = 4 * _EXCERPT_TOKENS


@dataclass(frozen=True)
class RecallConfig:
    share: float  # of the message budget, for excerpts
    window_share: float  # of the message budget left to the window by every provider


class RecallProvider:
    def __init__(self, recall: Recall, counter: TokenCounter, config: RecallConfig) -> None:
        self.recall = recall
        self.counter = counter
        self.config = config

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]:
        share = int(budget * self.config.share) - TOKENS_PER_MESSAGE
        if share <= 0:
            return []
        # Where the window will start if every provider uses its full share.
        window = int(budget * self.config.window_share)
        hits = await self.recall.hits(conversation, message.text, window)
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
