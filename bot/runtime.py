"""Wiring: settings → database → token counter → chat client → Parley."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.chat import ChatClient
from bot.commands import CommandSpec
from bot.core import Parley
from bot.model_limits import context_window
from bot.search.tool import open_web_search
from bot.settings import Settings
from bot.texts import say
from memory.db import create_engine, migrate
from memory.store import Store
from memory.tokens import TokenCounter


@asynccontextmanager
async def open_parley(settings: Settings) -> AsyncIterator[Parley]:
    """A ready Parley on an up-to-date database; everything is closed on exit."""
    engine = create_engine(settings.resolved_database_url)
    chat = ChatClient(settings)
    try:
        await migrate(engine)
        window = context_window(settings.model, settings.context_tokens)
        # Loading the encoding reads a few MB from disk: not on the event loop.
        counter = await asyncio.to_thread(TokenCounter, settings.model)
        parley = Parley(settings, Store(engine), chat, counter, window)
        async with open_web_search(settings, counter) as search:
            if search is not None:
                parley.tools[search.name] = search
                parley.commands.add(CommandSpec("search", "/search <query>",
                                                say("search.summary"), tool=search.name))
                if settings.search_mode == "always":
                    parley.forced_tool = search.name
            try:
                yield parley
            finally:
                await parley.drain()
    finally:
        await chat.close()
        await engine.dispose()
