"""The conversation core: one message in, a streamed reply out, history kept in the store.

Follow a message: `reply()` → command or `_converse()` → store the user's message → build the
prompt within the budget (`PromptBuilder`) → stream from the chat API (`ChatClient`; `ToolRun` runs
the tools the model calls, e.g. web search) → store the finished reply. A failed call stores
nothing for the reply, so it leaves no half-written row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.attachments import ChatPart, prepare, with_images
from bot.calibration import Calibrator
from bot.chat import ChatClient, ChatError, ContextTooLong, EmptyStream
from bot.commands import CommandContext, CommandRegistry, default_commands, unavailable
from bot.delivery import Delivery
from bot.documents import DocumentIntake, document_limits
from bot.fitting import Fit, Fitter, reply_reserve
from bot.lifecycle import ReplyGate
from bot.locks import KeyedLocks
from bot.logs import Redactor, ReplyLog, settings_secrets
from bot.messages import (
    Attachment,
    Author,
    Command,
    ConversationKey,
    Delta,
    Final,
    Inbound,
    Outcome,
    ReplyEvent,
    TokenUsage,
)
from bot.model_tokenizer import ModelTokenizer
from bot.observe import ReplyObserver, observe
from bot.policy import Admission, PlatformRules, Policy
from bot.prompt import Newest, NoRoom, Prompt, PromptBuilder, Section
from bot.settings import Settings
from bot.streaming import Surface
from bot.texts import error_text, say
from bot.tools import Tool, ToolResult, ToolRun, ToolSource, ToolUse, available, footer, reserve
from bot.usage import attribute_calls
from bot.window import Window
from memory.documents import Documents, document_kind
from memory.inflight import RepliesInFlight
from memory.store import ConversationState, NewMessage, Store
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter, is_native, render

log = logging.getLogger(__name__)

# Overflows one message may meet (each tightens the calibration) before the person is told.
_OVERFLOW_RETRIES = 3
# Builds of one prompt while its measure says it does not fit.
_FIT_ATTEMPTS = 3
# Text longer than this is tokenized in a worker thread.
_OFFLOAD_CHARS = 20_000


def _is_document(attachment: Attachment) -> bool:
    # Files too large to download arrive without data: `prepare` reports those.
    return (
        bool(attachment.data)
        and document_kind(attachment.filename, attachment.content_type) is not None
    )


def _as_overflow(error: ChatError, empty_is_overflow: bool) -> ContextTooLong | None:
    """An overflow error as such; an empty stream for a large prompt as a probable one."""
    if isinstance(error, ContextTooLong):
        return error
    return ContextTooLong(error.detail, empty=True) if empty_is_overflow else None


def _refuses_tools(error: ChatError) -> bool:
    """A 400 about tools: the model or server has no function calling."""
    return error.outcome is Outcome.BAD_REQUEST and "tool" in error.detail.lower()


class ContextProvider(Protocol):
    """Adds context to a prompt (recalled excerpts, a summary, search results…).

    `budget` is what the conversation's messages could use; a provider takes its own share of
    it and reports exact token counts in its Sections, which are charged before history.
    """

    async def sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> list[Section]: ...


class ReplyListener(Protocol):
    """Work after a reply is stored (e.g. a rolling summary). Runs in the background: it never
    delays the reply, and its failure never reaches the person."""

    async def after_reply(self, conversation: ConversationState, prompt: Prompt) -> None: ...


class MessageGuard(Protocol):
    """Checks a message before the model sees it (limits, moderation)."""

    async def admit(self, message: Inbound) -> str | None:
        """None: answer it; otherwise what to tell the person instead (nothing is stored)."""


class ReplyCheck(Protocol):
    """Checks a finished reply before it is shown or stored (reply moderation)."""

    async def check_reply(self, text: str) -> str | None:
        """None: show it; otherwise what to show instead (the reply is not stored)."""


class Parley:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        chat: ChatClient,
        counter: TokenCounter,
        window: Window,
        rules: Mapping[str, PlatformRules] | None = None,
        tokenizer: ModelTokenizer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.policy = Policy(store, rules or {})
        self.chat = chat
        self.counter = counter
        self.window = window  # as discovered at start-up (the builder's may shrink later)
        self.prompts = PromptBuilder(
            store,
            counter,
            window.tokens,
            reply_reserve(window.tokens, settings.max_reply_tokens),
            settings.strict_roles,
        )
        calibrator = Calibrator(store.engine, settings.model, is_native(settings.model))
        self.fitter = Fitter(self.prompts, calibrator, tokenizer, settings.max_reply_tokens)
        self.tool_use = ToolUse()  # does the model ever call the tools it is offered?
        self.commands: CommandRegistry = default_commands()
        self.per_message = TOKENS_PER_MESSAGE
        self.providers: list[ContextProvider] = []
        self.listeners: list[ReplyListener] = []
        self.tools: dict[str, Tool] = {}
        self.guards: list[MessageGuard] = []
        self.reply_check: ReplyCheck | None = None  # set: replies are checked, not streamed
        self.tool_sources: list[ToolSource] = []  # tools offered per message (MCP servers)
        # Run this tool on every message instead of offering tools (endpoints without them).
        self.forced_tool: str | None = None
        self.tools_refused = False  # the endpoint rejected function calling once
        self.observers: list[ReplyObserver] = [ReplyLog()]
        self.gate = ReplyGate()  # closed at shutdown: new messages are turned away
        self.delivery = Delivery(self.gate, RepliesInFlight(store.engine), settings.stream_interval)
        self._redact = Redactor(settings_secrets(settings))
        self.intake = DocumentIntake(Documents(store.engine, counter, document_limits(settings)))
        self._locks = KeyedLocks[ConversationKey]()
        self._background: set[asyncio.Task[None]] = set()

    async def count(self, text: str) -> int:
        if len(text) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(self.counter.count, text)
        return self.counter.count(text)

    async def admit(self, message: Inbound) -> Admission:
        """Whether to answer what an adapter received (see `bot.policy`): call it first, and
        answer `admission.message` (its author's admin status decided). A re-delivered message
        or command is recognised here, before anything is shown or downloaded."""
        return await self.policy.admit(message)

    async def reply(self, message: Inbound) -> AsyncIterator[ReplyEvent]:
        """Answer one admitted message. Yields Deltas while the model writes, then one Final.

        Consume it to the end (or `aclose()` it): the conversation stays locked while it runs,
        so its messages are answered in order.
        """
        with self.gate.track():
            async for event in observe(message, self._answer(message), self.observers):
                yield event

    async def deliver(
        self, message: Inbound, surface: Surface, placeholder: str | None = None
    ) -> Final | None:
        """Answer one admitted message on a platform's `surface` (see `bot.delivery`): shutdown
        waits for it, final edit included, and a crash leaves nothing hanging."""
        return await self.delivery.deliver(self.reply(message), message, surface, placeholder)

    async def _answer(self, message: Inbound) -> AsyncIterator[ReplyEvent]:
        if self.gate.closing:
            yield Final(say("shutting_down"), Outcome.SHUTTING_DOWN)
            return
        command = message.command or self.commands.parse(message.text)
        force = self.forced_tool
        if command is not None:
            spec = self.commands.get(command.name)
            if spec is not None and spec.handler is None:
                force = spec.tool or force
                message, command = replace(message, text=command.args, command=None), None
        if command is not None:
            yield await self._run_command(message, command)
            return
        files = prepare(message.text, message.attachments, self.settings)
        documents = [a for a in message.attachments if _is_document(a)]
        if not files.answerable and not documents:
            yield Final(files.notice or say("empty"), Outcome.EMPTY)
            return
        message = replace(message, text=files.text)
        # Reading a document is slow: done before the lock, so the conversation is not held.
        read = [await self.intake.read(a) for a in documents]
        async with self._locks.hold(message.key):
            try:
                if files.answerable and (refusal := await self._refusal(message)):
                    yield Final(refusal, Outcome.DENIED)
                    return
                conversation = await self._conversation(message)
                attribute_calls(message.key.platform, message.author.id, conversation.id)
                newest = await self._store_user_message(conversation, message)
                notes = [await self.intake.store(conversation.id, message.author, r) for r in read]
                if not files.answerable:  # documents only: nothing to ask the model
                    told = "\n".join(note for note in (*notes, files.notice) if note)
                    yield Final(told, Outcome.COMMAND)
                    return
                # Notices (skipped files, documents added) go above the reply, never stored.
                notice = "".join(f"{note}\n\n" for note in (files.notice, *notes) if note)
                async for event in self._converse(
                    conversation, newest, message, force, files.images
                ):
                    if isinstance(event, Delta):
                        yield Delta(notice + event.text)
                    else:
                        yield replace(event, text=notice + event.text)
            except SQLAlchemyError:
                # The database is down or full: tell the person rather than go silent.
                log.exception("storage failed while answering in %s", message.key)
                yield Final(say("error.storage"), Outcome.SERVER_ERROR)

    async def _refusal(self, message: Inbound) -> str | None:
        for guard in self.guards:
            refusal = await guard.admit(message)
            if refusal is not None:
                return refusal
        return None

    async def record(self, message: Inbound) -> None:
        """Remember a message the bot does not answer (e.g. channel chatter an adapter catches
        up on), once, if its author is allowed to talk to Parley."""
        text = prepare(message.text, message.attachments, self.settings).text
        rules = self.policy.rules_for(message.key.platform)
        if not text.strip() or not self.policy.allowed(message, rules):
            return
        if not await self.policy.claim(message):
            return
        read = [await self.intake.read(a) for a in message.attachments if _is_document(a)]
        async with self._locks.hold(message.key):
            conversation = await self._conversation(message)
            await self._store_user_message(conversation, replace(message, text=text))
            for pending in read:
                await self.intake.store(conversation.id, message.author, pending)

    async def last_recorded(self, key: ConversationKey) -> str | None:
        """The platform id of the newest message stored at `key` (adapters catch up from
        there)."""
        if not await self.store.exists(key):
            return None
        conversation = await self.store.conversation(key)
        return await self.store.latest_platform_message_id(conversation.id)

    async def _conversation(self, message: Inbound) -> ConversationState:
        return await self.store.conversation(message.key, message.facts.kind)

    async def add_document(
        self,
        key: ConversationKey,
        author: Author,
        filename: str,
        data: bytes,
        content_type: str = "",
    ) -> str:
        """Make a shared text, code, data or PDF file recallable in its conversation (`parley
        memory add-file`); returns what to tell the person. Raises UnreadableDocument (worded
        by `texts.explain`) when it cannot be read."""
        pending = await self.intake.read(Attachment(filename, content_type, data), strict=True)
        conversation = await self.store.conversation(key)
        return await self.intake.store(conversation.id, author, pending)

    async def _run_command(self, message: Inbound, command: Command) -> Final:
        spec = self.commands.get(command.name)
        if spec is None or spec.handler is None:
            # Never the model's guess: an unknown or switched-off command is answered here.
            return Final(unavailable(command.name), Outcome.COMMAND)
        if spec.admin_only and not message.author.is_admin:
            return Final(say("admin_only", name=command.name), Outcome.DENIED)
        async with self._locks.hold(message.key):
            try:
                conversation = await self._conversation(message)
                text = await spec.handler(CommandContext(self, message, conversation), command.args)
            except SQLAlchemyError:
                log.exception("storage failed running /%s in %s", command.name, message.key)
                return Final(say("error.storage"), Outcome.SERVER_ERROR)
        return Final(text, Outcome.COMMAND)

    async def _store_user_message(
        self, conversation: ConversationState, message: Inbound
    ) -> Newest:
        text = render("user", message.author.name, message.text)
        tokens = await self.count(text)
        stored_id = await self.store.add(
            conversation.id,
            NewMessage(
                role="user",
                author_id=message.author.id,
                author_name=message.author.name,
                content=message.text,
                tokens=tokens,
                platform_message_id=message.message_id,
            ),
        )
        return Newest(stored_id, text, tokens)

    async def _converse(
        self,
        conversation: ConversationState,
        newest: Newest,
        message: Inbound,
        force: str | None = None,
        images: tuple[ChatPart, ...] = (),
    ) -> AsyncIterator[ReplyEvent]:
        """Answer `newest`, already stored: prompt within the budget, stream, store the reply."""
        system = conversation.persona or self.settings.system_prompt
        system_tokens = await self.count(system)
        shares = await self.fitter.shares(f"{system}\n{newest.text}")
        forced = await self._force(
            force,
            message.text,
            self.prompts.message_budget(system_tokens, self.fitter.factor(shares)),
        )
        # A forced tool's results are already in the prompt: nothing more to offer the model.
        offered = (
            []
            if forced or self.tools_refused
            else available(self.tools, self.tool_sources, self.policy.admin_tools(message))
        )
        overflows = 0
        while True:
            try:
                prompt, fit = await self._fitted(
                    conversation, message, newest, (system, system_tokens), shares, forced, offered
                )
            except NoRoom:
                yield Final(say("error.no_room"), Outcome.BAD_REQUEST)
                return
            # Images go with this prompt only (history keeps their names): their token cost
            # depends on the model, so they are not budgeted; an overflow re-trims.
            prompt = replace(prompt, messages=with_images(prompt.messages, images))
            window = self.fitter.window - self.prompts.reply_reserve
            room = int(window / self.fitter.factor(fit.shares)) - prompt.tokens
            run = ToolRun(self.chat, offered, self.counter, self.settings.tool_rounds, room)
            try:
                async for event in self._stream(conversation, prompt, run, forced, fit, images):
                    yield event
                return
            except (ContextTooLong, EmptyStream) as exc:
                overflow = _as_overflow(exc, self.fitter.empty_means_overflow(fit))
                if overflow is None:
                    yield Final(say("empty_reply"), Outcome.SERVER_ERROR)
                    return
                overflows += 1
                await self.fitter.overflowed(fit, overflow)
                if overflows > _OVERFLOW_RETRIES:
                    log.warning("prompt still too long in %s: %s", message.key, overflow.detail)
                    yield Final(say("error.context"), Outcome.BAD_REQUEST)
                    return
                log.info("context overflow in %s (%s); re-trimming", message.key, overflow.detail)
                shares = fit.shares
            except ChatError as exc:
                if offered and _refuses_tools(exc):
                    # Ollama, vLLM and others refuse `tools` for some models: answer without
                    # them from now on rather than fail every message.
                    log.warning(
                        "the endpoint refused function calling (%s); answering without "
                        "tools. Set PARLEY_SEARCH_MODE=always to search on every "
                        "message instead.",
                        exc.detail[:200],
                    )
                    self.tools_refused = True
                    offered = []
                    continue
                yield Final(self._error_text(exc), exc.outcome)
                return

    async def _fitted(
        self,
        conversation: ConversationState,
        message: Inbound,
        newest: Newest,
        system: tuple[str, int],
        shares: dict[str, float],
        forced: tuple[str, ToolResult] | None,
        offered: list[Tool],
    ) -> tuple[Prompt, Fit]:
        """The prompt built for the factor of `shares`, measured in the model's tokens; built
        again (a few times at most) while the measure says it does not leave the reply room."""
        for _attempt in range(_FIT_ATTEMPTS):
            factor = self.fitter.factor(shares)
            budget = self.prompts.message_budget(system[1], factor)
            sections = await self._sections(conversation, message, budget)
            if forced is not None:
                sections += (
                    Section({"role": "user", "content": forced[1].content}, forced[1].tokens),
                )
            kept = reserve(offered, self.counter, budget, results=not self.tool_use.ignored)
            prompt = await self.prompts.build(conversation, system, newest, sections, factor, kept)
            fit = await self.fitter.measure(prompt.messages, prompt.tokens)
            if fit.fits:
                break
            shares = fit.shares
        return prompt, fit

    async def _force(
        self, name: str | None, text: str, message_budget: int
    ) -> tuple[str, ToolResult] | None:
        """Run the tool a person asked for (`/search`) on their message, before the model."""
        tool = self.tools.get(name or "")
        if tool is None:
            return None
        budget = min(tool.room, message_budget // 3)
        return tool.name, await tool.run(tool.arguments_for(text), max(budget, 0), 1)

    async def _sections(
        self, conversation: ConversationState, message: Inbound, budget: int
    ) -> tuple[Section, ...]:
        found: list[Section] = []
        for provider in self.providers:
            found += await provider.sections(conversation, message, budget)
        return tuple(found)

    def background(self, job: Coroutine[Any, Any, None], what: str) -> None:
        """Run `job` after the reply without delaying it; failures are logged, never raised."""

        async def guarded() -> None:
            try:
                await job
            except Exception:
                log.exception("background job failed: %s", what)

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background jobs (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _stream(
        self,
        conversation: ConversationState,
        prompt: Prompt,
        run: ToolRun,
        forced: tuple[str, ToolResult] | None,
        fit: Fit,
        images: tuple[ChatPart, ...],
    ) -> AsyncIterator[ReplyEvent]:
        text = ""
        # Told above the reply (not stored): the model saw only the message's beginning.
        cut = f"{say('shortened.notice')}\n\n" if prompt.shortened else ""
        async for piece in run.stream(prompt.messages, self.fitter.reply_limit(fit)):
            text += piece
            if self.reply_check is None:  # a checked reply is shown whole, once it passed
                yield Delta(cut + text)
        self.tool_use.note(run)
        if not images and run.calls:  # an image's cost is the model's own: nothing to learn
            await self.fitter.learn(fit, run.calls[0].usage, run.definition_tokens)
        if not text.strip():
            yield Final(say("empty_reply"), Outcome.SERVER_ERROR)
            return
        if self.reply_check and (refusal := await self.reply_check.check_reply(text)):
            yield Final(refusal, Outcome.DENIED)
            return
        if run.calls and run.calls[-1].cut:
            log.info("reply in conversation %s was cut off", conversation.id)
            text += say("reply.cut")
        used = ([forced] if forced else []) + run.results
        tokens = await self._store_reply(conversation, text, used)
        for listener in self.listeners:
            self.background(
                listener.after_reply(conversation, prompt), f"{type(listener).__name__} after reply"
            )
        shown, sources = footer([result for _, result in used], text)
        yield Final(cut + text + shown, sources=sources, usage=TokenUsage(prompt.tokens, tokens))

    async def _store_reply(
        self, conversation: ConversationState, text: str, used: list[tuple[str, ToolResult]]
    ) -> int:
        """Store the reply after its tool records; returns its token count."""
        # Compact records of the tool calls go before the reply, so follow-ups can use them.
        for name, result in used:
            if result.record:
                await self.store.add(
                    conversation.id,
                    NewMessage(
                        role="system",
                        author_id=name,
                        author_name=name,
                        content=result.record,
                        tokens=result.record_tokens,
                    ),
                )
        await self.store.add(
            conversation.id,
            NewMessage(
                role="assistant",
                author_id="parley",
                author_name="Parley",
                content=text,
                tokens=(tokens := await self.count(text)),
            ),
        )
        return tokens

    def _error_text(self, error: ChatError) -> str:
        # The endpoint's own words and its URL reach the chat: never with a credential.
        text = error_text(
            error.outcome,
            url=self.settings.openai_base_url,
            model=self.settings.model,
            detail=error.detail[:300],
        )
        return self._redact(text)
