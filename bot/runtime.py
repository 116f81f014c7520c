"""Wiring: settings → database → token counter → chat client → Parley."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.chat import ChatClient
from bot.core import Parley
from bot.model_limits import context_window
from bot.settings import Settings
from memory.db import create_engine, migrate
from memory.privacy import keep_pruning
from memory.recall import RecallConfig, RecallProvider
from memory.search import FullText
from memory.store import Store
from memory.summary import Summaries, Summarizer, SummaryProvider
from memory.tokens import TokenCounter


def install_memory(parley: Parley) -> None:
    """Long-term memory: the rolling summary (top of the prompt) and recalled excerpts."""
    settings, engine = parley.settings, parley.store.engine
    summaries = Summaries(engine)
    parley.providers += [
        SummaryProvider(summaries, parley.counter, settings.summary_share),
        RecallProvider(parley.store, FullText(engine), parley.counter, RecallConfig(
            share=settings.recall_share,
            window_share=1 - settings.recall_share - settings.summary_share,
            workspace=settings.recall_scope == "workspace",
        )),
    ]
    budget = parley.prompts.message_budget(parley.counter.count(settings.system_prompt))
    parley.listeners.append(Summarizer(
        parley.store, summaries, parley.chat,
        batch_tokens=budget // 2, summary_tokens=max(int(budget * settings.summary_share), 64)))


@asynccontextmanager
async def open_parley(settings: Settings) -> AsyncIterator[Parley]:
    """A ready Parley on an up-to-date database; everything is closed on exit."""
    engine = create_engine(settings.resolved_database_url)
    chat = ChatClient(settings)
    retention: asyncio.Task[None] | None = None
    try:
        await migrate(engine)
        window = context_window(settings.model, settings.context_tokens)
        # Loading the encoding reads a few MB from disk: not on the event loop.
        counter = await asyncio.to_thread(TokenCounter, settings.model)
        parley = Parley(settings, Store(engine), chat, counter, window)
        if settings.recall:
            install_memory(parley)
        if settings.retention_days is not None:
            retention = asyncio.create_task(keep_pruning(engine, settings.retention_days))
        try:
            yield parley
        finally:
            await parley.drain()
    finally:
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        await chat.close()
        await engine.dispose()
