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
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_REPLY, TokenCounter, render

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
        counter: TokenCounter,
        batch_tokens: int,
        summary_tokens: int,
    ) -> None:
        self.store = store
        self.summaries = summaries
        self.chat = chat
        self.counter = counter
        self.batch_tokens = batch_tokens  # transcript per summary call: must fit the window
        self.summary_tokens = summary_tokens
        self._running: set[int] = set()

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None:
        # A conversation whose whole history fits has nothing to summarize; a second reply
        # while a summary is being written leaves it to the next one.
        start = prompt.history_start
        if start is None or conversation.id in self._running:
            return
        self._running.add(conversation.id)
        try:
            await self._update(conversation, prompt, start)
        except ChatError as exc:
            log.warning("summary of conversation %s not updated: %s", conversation.id, exc)
        finally:
            self._running.discard(conversation.id)

    async def _update(self, conversation: ConversationState, prompt: Prompt, start: int) -> None:
        """`start`: the id of the oldest message in the prompt."""
        # Most replies leave too little to summarize: the summary read with the conversation
        # and the messages read with the window tell so without a statement. (A background
        # update since then only covers more, leaving less.)
        known = await self.summaries.get(conversation)
        pending = self._pending(conversation, known, prompt)
        if pending is not None and len(pending) < MIN_MESSAGES:
            return
        # Read again: an earlier background update may have moved it since the message came.
        current = await self.summaries.get(conversation, fresh=True)
        pending = self._pending(conversation, current, prompt)
        if pending is None:
            # The newest unsummarized messages just outside the window, up to one batch.
            # After a long gap (e.g. an import), older ones are skipped: recall still finds
            # them.
            covered = current.covers_until if current else conversation.reset_after
            pending = await self.store.window(
                replace(conversation, reset_after=covered),
                start,
                self.batch_tokens,
                TOKENS_PER_MESSAGE,
            )
        if len(pending) < MIN_MESSAGES:
            return
        await self._summarize(conversation.id, current, pending)

    def _pending(
        self, conversation: ConversationState, summary: SummaryState | None, prompt: Prompt
    ) -> list[StoredMessage] | None:
        """The batch to summarize as far as the prompt's read tells (None: it does not)."""
        covered = summary.covers_until if summary else conversation.reset_after
        return prompt.earlier.fitting(covered, self.batch_tokens, TOKENS_PER_MESSAGE)

    async def _summarize(
        self, conversation_id: int, current: SummaryState | None, pending: list[StoredMessage]
    ) -> None:
        instruction = say("summary.instruction", tokens=self.summary_tokens)
        previous = current.content if current else say("summary.none")
        transcript = _transcript(pending)
        request: list[ChatMessage] = [
            {"role": "system", "content": instruction},
            {"role": "user", "content": _request(previous, transcript)},
        ]
        # The transcript's tokens from the stored counts (re-counting it cost milliseconds).
        counted = (
            TOKENS_PER_REPLY
            + 2 * TOKENS_PER_MESSAGE
            + self.counter.count(instruction)
            + self.counter.count(_request(previous, ""))
            + sum(m.tokens + self.counter.count(_line_head(m)) for m in pending)
        )
        # In the background: it waits for a moment without a reply in flight.
        with call_kind("summary"):
            reply = self.chat.stream(request, background=True, counted=counted)
            text = "".join([piece async for piece in reply]).strip()
        if reply.cut:
            # Half a summary would replace a whole one: keep the old until the next try.
            log.info("summary of conversation %s was cut off; discarded", conversation_id)
            return
        if text:
            await self.summaries.save(conversation_id, SummaryState(text, pending[-1].id))


def _request(previous: str, transcript: str) -> str:
    return quote(
        say("quote.transcript"),
        say("summary.request", previous=previous, transcript=transcript),
    )


def _line_head(message: StoredMessage) -> str:
    """What a transcript line adds to the message as its tokens were counted: the time, and
    the speaker's name where the stored form has none (a reply's, a tool record's)."""
    named = "" if message.role == "user" else render("user", message.author_name, "")
    return f"{message.created_at:%Y-%m-%d %H:%M} {named}"


def _transcript(messages: list[StoredMessage]) -> str:
    return "\n".join(
        f"{m.created_at:%Y-%m-%d %H:%M} {render('user', m.author_name, m.content)}"
        for m in messages
    )
