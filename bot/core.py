"""The conversation core: one message in, a streamed reply out, history kept in the store.

Follow a message: `reply()` → a command (`bot.commands`), or store the user's message and hand it
to an `Exchange` (`bot.exchange`): build the prompt within the budget (`PromptBuilder`) → stream
from the chat API (`ChatClient`; `ToolRun` runs the tools the model calls, e.g. web search) →
store the finished reply. A failed call stores nothing for the reply, so it leaves no
half-written row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.attachments import prepare
from bot.calibration import Calibrator
from bot.chat import ChatClient, ChatError
from bot.commands import CommandContext, CommandRegistry, default_commands, unavailable
from bot.delivery import Delivery
from bot.documents import DocumentIntake, document_limits
from bot.exchange import Exchange
from bot.fitting import Fitter, reply_reserve
from bot.hooks import ContextProvider, MessageGuard, ReplyCheck, ReplyListener
from bot.lifecycle import ReplyGate
from bot.logs import Redactor, ReplyLog, settings_secrets
from bot.messages import (
    Attachment,
    Author,
    Command,
    ConversationKey,
    Final,
    Inbound,
    Outcome,
    ReplyEvent,
)
from bot.model_tokenizer import ModelTokenizer
from bot.observe import ReplyObserver, observe
from bot.pipeline import Pipeline
from bot.policy import Admission, PlatformRules, Policy, Verdict
from bot.prompt import Newest, PromptBuilder
from bot.queued import Route
from bot.settings import Settings
from bot.streaming import Surface
from bot.texts import error_text, say
from bot.tools import Tool, ToolSource, ToolUse
from bot.usage import attribute_calls
from bot.window import Window
from memory.documents import Documents, document_kind
from memory.inbound import InboundQueue, process_owner
from memory.index_merging import IndexMerging
from memory.inflight import RepliesInFlight
from memory.store import ConversationState, NewMessage, Store
from memory.tokens import TOKENS_PER_MESSAGE, TokenCounter, is_native, render

log = logging.getLogger(__name__)

# Text longer than this is tokenized in a worker thread.
_OFFLOAD_CHARS = 20_000


def _is_document(attachment: Attachment) -> bool:
    # Files too large to download arrive without data: `prepare` reports those.
    return (
        bool(attachment.data)
        and document_kind(attachment.filename, attachment.content_type) is not None
    )


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
        self.gate = ReplyGate()  # closed at shutdown: new messages are turned away
        owner = process_owner()  # this process's name on its claims and replies in flight
        queue = InboundQueue(store.engine, owner)
        self.pipeline = Pipeline(queue, self.gate, settings.reply_workers, settings.resume_window)
        self.policy = Policy(store, rules or {}, queue.known)
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
        in_flight = RepliesInFlight(store.engine, owner)
        self.delivery = Delivery(
            self.gate, in_flight, settings.stream_interval, self.pipeline.finishing
        )
        self._redact = Redactor(settings_secrets(settings))
        self.intake = DocumentIntake(Documents(store.engine, counter, document_limits(settings)))
        self._background: set[asyncio.Task[None]] = set()
        self.merging = IndexMerging(store.engine)

    async def count(self, text: str) -> int:
        if len(text) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(self.counter.count, text)
        return self.counter.count(text)

    async def admit(self, message: Inbound) -> Admission:
        """Whether to answer a message (see `bot.policy`), for callers that answer it at once
        with `reply` (the terminal); platform adapters `accept` instead."""
        return await self.policy.admit(message)

    async def accept(self, message: Inbound, route: Route) -> Admission:
        """What an adapter received, before it acknowledges the platform: admitted by the
        policy and, when it is to be answered, stored (`bot.pipeline`); a re-delivered message
        or command is recognised by the database and ignored. The answer comes later, through
        the `Responder` the adapter registered with `pipeline.serve` for `route.lane`."""
        admission = await self.policy.admit(message)
        if admission.verdict is not Verdict.ANSWER:
            return admission
        if not await self.pipeline.store(admission.message, route, admission.catch_up):
            return Admission(Verdict.IGNORE, admission.message)
        return admission

    async def reply(self, message: Inbound) -> AsyncIterator[ReplyEvent]:
        """Answer one admitted message. Yields Deltas while the model writes, then one Final.

        One conversation's messages must be answered one at a time: the pipeline's claims see
        to it for platforms; a direct caller (the terminal) waits for each reply.
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
        read = [await self.intake.read(a) for a in documents]
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
            exchange = Exchange(self, conversation, newest, message, files.images, notice)
            async for event in exchange.run(force):
                yield event
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
        if message.message_id is not None and not await self.pipeline.remember(message):
            return
        read = [await self.intake.read(a) for a in message.attachments if _is_document(a)]
        conversation = await self._conversation(message)
        await self._store_user_message(conversation, replace(message, text=text))
        for pending in read:
            await self.intake.store(conversation.id, message.author, pending)
        self.merge_index()

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
        new = NewMessage(
            role="user",
            author_id=message.author.id,
            author_name=message.author.name,
            content=message.text,
            tokens=tokens,
            platform_message_id=message.message_id,
        )
        try:
            stored_id = await self.store.add(conversation.id, new)
        except IntegrityError:
            # Stored before a crash cut its answer off: answered now, from where it is.
            found = await self.store.platform_message(conversation.id, message.message_id or "")
            if found is None:
                raise
            stored_id = found
        return Newest(stored_id, text, tokens)

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

    def merge_index(self) -> None:
        """Merge the search index's segments that stores left (memory/index_merging.py), after
        a reply or a message not answered: never in a reply's path. SQLite only."""
        if self.merging.applies:
            self.background(self.merging.merge(), "search index merge")

    async def drain(self) -> None:
        """Wait for background jobs (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def error_text(self, error: ChatError) -> str:
        # The endpoint's own words and its URL reach the chat: never with a credential.
        text = error_text(
            error.outcome,
            url=self.settings.openai_base_url,
            model=self.settings.model,
            detail=error.detail[:300],
        )
        return self._redact(text)
