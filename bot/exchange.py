"""One message's exchange with the model: the prompt built within the budget, the reply
streamed (tools run as the model calls them), overflows re-trimmed, the finished reply stored.

A failed call stores nothing for the reply, so it leaves no half-written row.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.attachments import ChatPart, with_images
from bot.chat import ChatError, ContextTooLong, EmptyStream, StreamCut
from bot.fitting import Fit
from bot.messages import Delta, Final, Inbound, Outcome, ReplyEvent, TokenUsage
from bot.prompt import Newest, NoRoom, Prompt, Section
from bot.texts import say
from bot.tools import Tool, ToolResult, ToolRun, available, footer, reserve
from memory.store import ConversationState, NewMessage

if TYPE_CHECKING:
    from bot.core import Parley

log = logging.getLogger(__name__)

# Overflows one message may meet (each tightens the calibration) before the person is told.
_OVERFLOW_RETRIES = 3
# Builds of one prompt while its measure says it does not fit.
_FIT_ATTEMPTS = 3

Forced = tuple[str, ToolResult]  # a tool run before the model (`/search`): its name and result


def _as_overflow(error: ChatError, empty_is_overflow: bool) -> ContextTooLong | None:
    """An overflow error as such; an empty stream for a large prompt as a probable one."""
    if isinstance(error, ContextTooLong):
        return error
    return ContextTooLong(error.detail, empty=True) if empty_is_overflow else None


def _refuses_tools(error: ChatError) -> bool:
    """A 400 about tools: the model or server has no function calling."""
    return error.outcome is Outcome.BAD_REQUEST and "tool" in error.detail.lower()


class Exchange:
    """Answers `newest`, already stored in `conversation`."""

    def __init__(
        self,
        parley: Parley,
        conversation: ConversationState,
        newest: Newest,
        message: Inbound,
        images: tuple[ChatPart, ...] = (),
        notice: str = "",
    ) -> None:
        self.parley = parley
        self.notice = notice  # shown above the reply (skipped files, documents added)
        self.conversation = conversation
        self.newest = newest
        self.message = message
        self.images = images
        self.system = conversation.persona or parley.settings.system_prompt
        self.system_tokens = 0
        self.shares: dict[str, float] = {}
        self.forced: Forced | None = None
        self.offered: list[Tool] = []

    async def run(self, force: str | None) -> AsyncIterator[ReplyEvent]:
        """The reply's events, each below the notice (never stored)."""
        async for event in self._events(force):
            if isinstance(event, Delta):
                yield Delta(self.notice + event.text)
            else:
                yield replace(event, text=self.notice + event.text)

    async def _events(self, force: str | None) -> AsyncIterator[ReplyEvent]:
        await self._prepare(force)
        overflows = 0
        while True:
            try:
                prompt, fit = await self._fitted()
            except NoRoom:
                yield Final(say("error.no_room"), Outcome.BAD_REQUEST)
                return
            try:
                async for event in self._stream(prompt, fit):
                    yield event
                return
            except (ContextTooLong, EmptyStream) as exc:
                overflows += 1
                told = await self._overflowed(exc, fit, overflows)
                if told is not None:
                    yield told
                    return
            except ChatError as exc:
                if not (self.offered and _refuses_tools(exc)):
                    yield Final(self.parley.error_text(exc), exc.outcome)
                    return
                self._answer_without_tools(exc)

    async def _prepare(self, force: str | None) -> None:
        parley = self.parley
        self.system_tokens = await parley.count(self.system)
        self.shares = await parley.fitter.shares(f"{self.system}\n{self.newest.text}")
        budget = parley.prompts.message_budget(
            self.system_tokens, parley.fitter.factor(self.shares)
        )
        self.forced = await self._force(force, budget)
        # A forced tool's results are already in the prompt: nothing more to offer the model.
        if not (self.forced or parley.tools_refused):
            admin = parley.policy.admin_tools(self.message)
            self.offered = available(parley.tools, parley.tool_sources, admin)

    async def _force(self, name: str | None, message_budget: int) -> Forced | None:
        """Run the tool a person asked for (`/search`) on their message, before the model."""
        tool = self.parley.tools.get(name or "")
        if tool is None:
            return None
        budget = min(tool.room, message_budget // 3)
        return tool.name, await tool.run(tool.arguments_for(self.message.text), max(budget, 0), 1)

    async def _overflowed(self, error: ChatError, fit: Fit, overflows: int) -> Final | None:
        """Learn from an overflow and try again smaller (None), or what to tell the person."""
        fitter = self.parley.fitter
        overflow = _as_overflow(error, fitter.empty_means_overflow(fit))
        if overflow is None:
            return Final(say("empty_reply"), Outcome.SERVER_ERROR)
        await fitter.overflowed(fit, overflow)
        if overflows > _OVERFLOW_RETRIES:
            log.warning("prompt still too long in %s: %s", self.message.key, overflow.detail)
            return Final(say("error.context"), Outcome.BAD_REQUEST)
        log.info("context overflow in %s (%s); re-trimming", self.message.key, overflow.detail)
        self.shares = fit.shares
        return None

    def _answer_without_tools(self, error: ChatError) -> None:
        # Ollama, vLLM and others refuse `tools` for some models: answer without them from now
        # on rather than fail every message.
        log.warning(
            "the endpoint refused function calling (%s); answering without tools. Set "
            "PARLEY_SEARCH_MODE=always to search on every message instead.",
            error.detail[:200],
        )
        self.parley.tools_refused = True
        self.offered = []

    async def _fitted(self) -> tuple[Prompt, Fit]:
        """The prompt built for the factor of the shares, measured in the model's tokens; built
        again (a few times at most) while the measure says it does not leave the reply room."""
        parley = self.parley
        for _attempt in range(_FIT_ATTEMPTS):
            factor = parley.fitter.factor(self.shares)
            budget = parley.prompts.message_budget(self.system_tokens, factor)
            ahead = parley.prompts.read_ahead(self.conversation, self.newest, budget)
            try:
                sections = await self._sections(budget)
                kept = reserve(
                    self.offered, parley.counter, budget, results=not parley.tool_use.ignored
                )
                prompt = await parley.prompts.build(
                    self.conversation,
                    (self.system, self.system_tokens),
                    self.newest,
                    sections,
                    factor,
                    kept,
                    ahead,
                )
            finally:
                if ahead is not None:
                    ahead.discard()
            fit = await parley.fitter.measure(prompt.messages, prompt.tokens)
            if fit.fits:
                break
            self.shares = fit.shares
        # Images go with this prompt only (history keeps their names): their token cost depends
        # on the model, so they are not budgeted; an overflow re-trims.
        return replace(prompt, messages=with_images(prompt.messages, self.images)), fit

    async def _sections(self, budget: int) -> tuple[Section, ...]:
        found: list[Section] = []
        for provider in self.parley.providers:
            found += await provider.sections(self.conversation, self.message, budget)
        if self.forced is not None:
            result = self.forced[1]
            found.append(Section({"role": "user", "content": result.content}, result.tokens))
        return tuple(found)

    def _tool_run(self, prompt: Prompt, fit: Fit) -> ToolRun:
        parley = self.parley
        window = parley.fitter.window - parley.prompts.reply_reserve
        room = int(window / parley.fitter.factor(fit.shares)) - prompt.tokens
        return ToolRun(parley.chat, self.offered, parley.counter, parley.settings.tool_rounds, room)

    async def _stream(self, prompt: Prompt, fit: Fit) -> AsyncIterator[ReplyEvent]:
        parley = self.parley
        run = self._tool_run(prompt, fit)
        text = ""
        # Told above the reply (not stored): the model saw only the message's beginning.
        cut = f"{say('shortened.notice')}\n\n" if prompt.shortened else ""
        try:
            async for piece in run.stream(
                prompt.messages, parley.fitter.reply_limit(fit), prompt.tokens
            ):
                text += piece
                if parley.reply_check is None:  # a checked reply is shown whole, once it passed
                    yield Delta(cut + text)
        except StreamCut as exc:
            log.info("reply in conversation %s was interrupted: %s", self.conversation.id, exc)
            if not text.strip() or parley.reply_check is not None:
                raise
            # Shown as it came, marked, and not stored: it is not an answer.
            yield Final(cut + text + say("reply.interrupted"), Outcome.INTERRUPTED)
            return
        parley.tool_use.note(run)
        if not self.images and run.calls:  # an image's cost is the model's own: nothing to learn
            await parley.fitter.learn(fit, run.calls[0].usage, run.definition_tokens)
        if not text.strip():
            yield Final(say("empty_reply"), Outcome.SERVER_ERROR)
            return
        if parley.reply_check and (refusal := await parley.reply_check.check_reply(text)):
            yield Final(refusal, Outcome.DENIED)
            return
        if run.calls and run.calls[-1].cut:
            log.info("reply in conversation %s was cut off", self.conversation.id)
            text += say("reply.cut")
        used = ([self.forced] if self.forced else []) + run.results
        shown, sources = footer([result for _, result in used], text)
        final = cut + text + shown
        tokens = await self._store_reply(text, used, self.notice + final)
        parley.merge_index()
        for listener in parley.listeners:
            job = listener.after_reply(self.conversation, prompt)
            parley.background(job, f"{type(listener).__name__} after reply")
        yield Final(final, sources=sources, usage=TokenUsage(prompt.tokens, tokens))

    async def _store_reply(self, text: str, used: list[Forced], shown: str) -> int:
        """Store the reply after its tool records; returns its token count. `shown`: the whole
        text the person will see (kept for a crash during its last edit)."""
        store, conversation_id = self.parley.store, self.conversation.id
        # Compact records of the tool calls go before the reply, so follow-ups can use them.
        for name, result in used:
            if result.record:
                record = NewMessage(
                    role="system",
                    author_id=name,
                    author_name=name,
                    content=result.record,
                    tokens=result.record_tokens,
                )
                await store.add(conversation_id, record)
        tokens = await self.parley.count(text)
        reply = NewMessage(
            role="assistant", author_id="parley", author_name="Parley", content=text, tokens=tokens
        )
        # The inbound item ends with its reply, and the reply in flight keeps what it will show:
        # a restart neither answers the message twice nor hides the answer.
        then = (self.parley.pipeline.finishing(), self.parley.delivery.keeping(shown))
        await store.add(conversation_id, reply, [step for step in then if step is not None])
        return tokens
