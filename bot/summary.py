"""The rolling summary of what left the window: written by the model after a reply (in the
background), shown at the top of later prompts within its share of the budget."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.chat import ChatClient, ChatError, ChatMessage
from bot.messages import Inbound
from bot.prompt import Prompt, Section
from bot.quoting import quote
from bot.texts import say
from bot.usage import call_kind
from memory.store import ConversationState, Store, StoredMessage
from memory.summary import Summaries, SummaryState
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter, render

log = logging.getLogger(__name__)

# Summarize once this many messages have left the window unsummarized (not after every reply).
MIN_MESSAGES = 6


class SummaryProvider:
    """Puts the stored summary at the top of the prompt, cut to its share of the budget."""

    def __init__(self, summaries: Summaries, counter: TokenCounter, share: float) -> None:
        self.summaries = summaries
        self.counter = counter
        self.share = share

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]:
        share = int(budget * self.share) - TOKENS_PER_MESSAGE
        state = await self.summaries.get(conversation)
        if state is None or share <= 0:
            return []
        what = say("summary.section")
        room = share - self.counter.count(quote(what, ""))
        if room <= 0:
            return []
        summary = self.counter.truncate(state.content, room)  # cut inside the quotes
        text = quote(what, summary)
        return [Section({"role": "user", "content": text}, self.counter.count(text))]


class Summarizer:
    """A ReplyListener: folds messages that just left the window into the summary."""

    def __init__(
        self,
        store: Store,
        summaries: Summaries,
        chat: ChatClient,
        batch_tokens: int,
        summary_tokens: int,
    ) -> None:
        self.store = store
        self.summaries = summaries
        self.chat = chat
        self.batch_tokens = batch_tokens  # transcript per summary call: must fit the window
        self.summary_tokens = summary_tokens
        self._running: set[int] = set()

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None:
        # A conversation whose whole history fits has nothing to summarize; a second reply
        # while a summary is being written leaves it to the next one.
        if not prompt.history or conversation.id in self._running:
            return
        self._running.add(conversation.id)
        try:
            await self._update(conversation, prompt.history[0].id)
        except ChatError as exc:
            log.warning("summary of conversation %s not updated: %s", conversation.id, exc)
        finally:
            self._running.discard(conversation.id)

    async def _update(self, conversation: ConversationState, window_start: int) -> None:
        # Read again: an earlier background update may have moved it since the message came.
        current = await self.summaries.get(conversation, fresh=True)
        covered = current.covers_until if current else conversation.reset_after
        # The newest unsummarized messages just outside the window, up to one batch. After a
        # long gap (e.g. an import), older ones are skipped: recall still finds them.
        pending = await self.store.window(
            replace(conversation, reset_after=covered),
            window_start,
            self.batch_tokens,
            TOKENS_PER_MESSAGE,
        )
        if len(pending) < MIN_MESSAGES:
            return
        request: list[ChatMessage] = [
            {"role": "system", "content": say("summary.instruction", tokens=self.summary_tokens)},
            {
                "role": "user",
                "content": quote(
                    say("quote.transcript"),
                    say(
                        "summary.request",
                        previous=current.content if current else say("summary.none"),
                        transcript=_transcript(pending),
                    ),
                ),
            },
        ]
        # In the background: it waits for a moment without a reply in flight.
        with call_kind("summary"):
            reply = self.chat.stream(request, background=True)
            text = "".join([piece async for piece in reply]).strip()
        if reply.cut:
            # Half a summary would replace a whole one: keep the old until the next try.
            log.info("summary of conversation %s was cut off; discarded", conversation.id)
            return
        if text:
            await self.summaries.save(conversation.id, SummaryState(text, pending[-1].id))


def _transcript(messages: list[StoredMessage]) -> str:
    return "\n".join(
        f"{m.created_at:%Y-%m-%d %H:%M} {render('user', m.author_name, m.content)}"
        for m in messages
    )
