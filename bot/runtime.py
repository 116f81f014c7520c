"""Wiring: settings → database → token counter → chat client → Parley."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.accounting import install_accounting
from bot.chat import ChatClient
from bot.collector import collections_on_a_clock
from bot.commands import search_command
from bot.core import Parley
from bot.embedder import Embedder, IndexAfterReply
from bot.model_tokenizer import ModelTokenizer, open_tokenizer
from bot.plugins import plugin_rules
from bot.recall import RecallConfig, RecallProvider
from bot.search.tool import open_web_search
from bot.settings import Settings
from bot.summary import Summarizer, SummaryProvider
from bot.texts import use_locale
from bot.tools import Tool, ToolSource
from bot.usage import UsageMeter
from bot.window import discover_window
from memory.analysis import warm_up
from memory.checkpoints import keep_checkpointing
from memory.db import create_engine, migrate
from memory.embeddings import Indexer, SemanticRanking, Vectors
from memory.privacy import keep_pruning
from memory.recall import Recall
from memory.search import FullText
from memory.store import Store
from memory.summary import Summaries
from memory.tokens import TokenCounter, is_native

log = logging.getLogger(__name__)

_HEALTH_TIMEOUT = 5.0


def install_memory(parley: Parley) -> Recall:
    """Long-term memory: the rolling summary (top of the prompt) and recalled excerpts; with an
    embedding model, messages are embedded after replies and recall also ranks by meaning."""
    settings, engine = parley.settings, parley.store.engine
    summaries = Summaries(engine)
    search = FullText(engine)
    semantic: SemanticRanking | None = None
    if settings.embedding_model:
        embedder = Embedder(parley.chat, settings.embedding_model)
        vectors = Vectors(engine, settings.embedding_model)
        semantic = SemanticRanking(vectors, embedder, search)
        parley.listeners.append(IndexAfterReply(Indexer(vectors, embedder)))
    recall = Recall(parley.store, search, settings.recall_scope == "workspace", semantic)
    parley.providers += [
        SummaryProvider(summaries, parley.counter, settings.summary_share),
        RecallProvider(
            recall,
            parley.counter,
            RecallConfig(
                share=settings.recall_share,
                window_share=1 - settings.recall_share - settings.summary_share,
            ),
        ),
    ]
    # Summaries are written in whatever script the conversation has: budget for the costliest.
    budget = parley.prompts.message_budget(
        parley.counter.count(settings.system_prompt), parley.fitter.worst_factor()
    )
    parley.listeners.append(
        Summarizer(
            parley.store,
            summaries,
            parley.chat,
            parley.counter,
            batch_tokens=budget // 2,
            summary_tokens=max(int(budget * settings.summary_share), 64),
        )
    )
    return recall


def install_tools(parley: Parley, search: Tool | None, mcp: ToolSource | None) -> None:
    """Web search (with its /search command) and the MCP servers' tools."""
    if search is not None:
        parley.tools[search.name] = search
        parley.commands.add(search_command(search.name))
        if parley.settings.search_mode == "always":
            parley.forced_tool = search.name
    if mcp is not None:
        parley.tool_sources.append(mcp)


def open_tool_servers(
    settings: Settings, counter: TokenCounter, start: bool
) -> AbstractAsyncContextManager[ToolSource | None]:
    """The MCP servers' tools; the `mcp` package (~28 MB resident) is loaded only when
    servers are configured and to be started."""
    if settings.mcp_config is None or not start:
        return nullcontext(None)
    from bot.mcp.toolbox import open_mcp

    return open_mcp(settings.mcp_config, settings, counter)


@asynccontextmanager
async def open_parley(
    settings: Settings, mcp_servers: bool = True, serving: bool = False
) -> AsyncIterator[Parley]:
    """A ready Parley on an up-to-date database; everything is closed on exit. Commands that
    never answer a message (e.g. adding a file) pass `mcp_servers=False`: none is started. A
    bot about to answer many (`serving`) has recall's statements prepared in the background
    and, on SQLite, its log checkpointed apart from the replies (memory/checkpoints.py) and its
    search index merged from the start (memory/index_merging.py)."""
    use_locale(settings.locale)  # also for library users and tests that skip load_settings
    engine = create_engine(settings.resolved_database_url)
    chat = ChatClient(settings)
    tokenizer: ModelTokenizer | None = None
    try:
        await migrate(engine)
        window = await discover_window(settings)
        native = is_native(settings.model)
        tokenizer = await open_tokenizer(
            settings.tokenizer, settings.openai_base_url, settings.model, native
        )
        # Loading the encoding reads a few MB from disk: not on the event loop.
        counter = await asyncio.to_thread(TokenCounter, settings.model)
        parley = Parley(
            settings, Store(engine), chat, counter, window, plugin_rules(settings), tokenizer
        )
        await parley.fitter.calibrator.load()
        log.info("context window: %d tokens (%s)", window.tokens, window.source)
        recall = install_memory(parley) if settings.recall else None
        install_accounting(parley)
        async with (
            _upkeep(engine, settings, recall, serving),
            open_web_search(settings, counter) as search,
            open_tool_servers(settings, counter, mcp_servers) as mcp,
        ):
            install_tools(parley, search, mcp)
            if serving:  # what imports and commands stored meanwhile
                parley.merge_index()
            async with collections_on_a_clock(parley.gate):
                try:
                    yield parley
                finally:
                    await parley.gate.close(settings.shutdown_timeout)  # deliveries end with writes
                    await parley.pipeline.stop()  # idle workers; busy ones ended with the gate
                    parley.merging.stop()  # the rest waits for the next start
                    await parley.drain()
    finally:
        await chat.close()
        if tokenizer is not None:
            await tokenizer.close()
        await engine.dispose()


@asynccontextmanager
async def _upkeep(
    engine: AsyncEngine, settings: Settings, recall: Recall | None, serving: bool
) -> AsyncIterator[None]:
    """The work beside the replies while the block runs: retention; when serving, recall's
    statements prepared and the SQLite log checkpointed; Korean's analyzer loaded if expected."""
    stopping = asyncio.Event()
    loops = [asyncio.create_task(keep_pruning(engine, settings.retention_days, stopping))]
    if serving:
        loops.append(asyncio.create_task(keep_checkpointing(engine, stopping)))
    preparing = asyncio.create_task(_prepare(recall)) if serving and recall else None
    # Expect Korean: load its analyzer now, off the loop.
    korean = recall is not None and settings.locale == "ko"
    warming = asyncio.create_task(asyncio.to_thread(warm_up)) if korean else None
    try:
        yield
    finally:
        if preparing is not None:
            preparing.cancel()
            await asyncio.gather(preparing, return_exceptions=True)
        stopping.set()
        await asyncio.gather(*loops)
        if warming is not None:
            await warming  # a worker thread cannot be cancelled: let it finish


async def _prepare(recall: Recall) -> None:
    try:
        await recall.query.prepare()
    except SQLAlchemyError as exc:  # only a head start lost: each reply prepares its own
        log.warning("recall statements not prepared ahead: %s", type(exc).__name__)


async def health(parley: Parley) -> str | None:
    """None when Parley can serve; otherwise what is wrong (for /healthz)."""
    if parley.gate.closing:
        return "shutting down"
    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT), parley.store.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("health check: database unavailable: %s", exc)
        return f"database unavailable ({type(exc).__name__})"
    return None


@asynccontextmanager
async def metrics_server(parley: Parley) -> AsyncIterator[int | None]:
    """With PARLEY_METRICS_PORT set, record reply metrics and serve /healthz and /metrics while
    the block runs; yields the bound port (None when off)."""
    port = parley.settings.metrics_port
    if port is None:
        yield None
        return
    from bot.metrics import Metrics, serve_metrics  # prometheus_client: only when serving

    metrics = Metrics()
    metrics.missed.set_function(lambda: parley.pipeline.missed)
    parley.observers.append(metrics)
    if isinstance(parley.chat.meter, UsageMeter):
        parley.chat.meter.observers.append(metrics)

    async def probe() -> str | None:
        return await health(parley)

    async with serve_metrics(metrics, probe, parley.settings.metrics_host, port) as bound:
        yield bound
