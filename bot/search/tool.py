"""The `web_search` tool: search, read the top pages, and give the model numbered sources.

Nothing here raises for a failed search: the model is told the search did not work (and
answers from what it knows), and the person gets a notice under the reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import ClassVar

import aiohttp
from openai.types.chat import ChatCompletionFunctionToolParam
from yarl import URL

from bot.quoting import quote, quoted_record
from bot.search.config import search_problem
from bot.search.pages import PageReader, PageUnreadable
from bot.search.providers import SearchFailed, SearchProvider, SearchResult, make_provider
from bot.search.render import render_record, render_results
from bot.settings import ConfigError, Settings
from bot.texts import say
from bot.tools import ToolResult
from memory.tokens import TokenCounter

log = logging.getLogger(__name__)

_FAILED = (
    'Web search for "{query}" is unavailable right now. Answer from what you know and '
    "say that you could not check the web."
)
_EMPTY = (
    'Web search for "{query}" found nothing. Answer from what you know and say that the '
    "search found nothing."
)
_NO_QUERY = 'web_search needs a non-empty "query" string.'


class WebSearch:
    name = "web_search"
    definition: ClassVar[ChatCompletionFunctionToolParam] = {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web for current information (news, prices, recent "
            "releases, facts you are unsure of). Returns numbered results to "
            "cite as [n].",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "The search query."}},
                "required": ["query"],
            },
        },
    }

    def __init__(
        self,
        provider: SearchProvider,
        reader: PageReader,
        counter: TokenCounter,
        results: int,
        read_pages: int,
        room: int,
        max_calls: int,
    ) -> None:
        self.provider = provider
        self.reader = reader
        self.counter = counter
        self.results = results
        self.read_pages = read_pages
        self.room = room
        self.max_calls: int | None = max_calls

    def arguments_for(self, text: str) -> str:
        return json.dumps({"query": text})

    async def run(self, arguments: str, budget: int, first_source: int) -> ToolResult:
        query = _query(arguments)
        if not query:
            return self._tell(_NO_QUERY, budget)
        try:
            results = await self.provider.search(query, self.results)
        except SearchFailed as exc:
            # Never the query: it is what a person asked, often in their own words.
            log.warning("web search via %s failed: %s", self.provider.name, exc)
            return self._tell(_FAILED.format(query=query), budget, say("search.unavailable"))
        if not results:
            log.info("web search via %s found nothing", self.provider.name)
            return self._tell(_EMPTY.format(query=query), budget, say("search.empty", query=query))
        pages = await self._read(results[: self.read_pages])
        # Results and pages are outside text: quoted, within the budget with their frame.
        what = say("quote.search")
        # +2: the text can merge with the frame's line breaks into other tokens.
        frame = self.counter.count(quote(what, "")) + 2
        rendered = await asyncio.to_thread(
            render_results, query, results, pages, first_source, self.counter, budget - frame
        )
        text = quote(what, rendered.text)
        record = render_record(query, results, rendered.sources)
        return ToolResult(
            text,
            self.counter.count(text),
            record,
            self.counter.count(quoted_record(record)),
            rendered.sources,
        )

    async def _read(self, results: Sequence[SearchResult]) -> dict[int, str]:
        """The readable text of each result that has one, by position."""
        texts = await asyncio.gather(*(self._read_one(result.url) for result in results))
        return {position: text for position, text in enumerate(texts) if text}

    async def _read_one(self, url: str) -> str | None:
        try:
            return await self.reader.read(url)
        except PageUnreadable as exc:
            log.info("not reading a result page on %s: %s", URL(url).host, exc)
            return None

    def _tell(self, text: str, budget: int, notice: str | None = None) -> ToolResult:
        text = self.counter.truncate(text, budget)
        return ToolResult(text, self.counter.count(text), notice=notice)


def _query(arguments: str) -> str:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return ""
    query = parsed.get("query") if isinstance(parsed, dict) else None
    return query.strip() if isinstance(query, str) else ""


@asynccontextmanager
async def open_web_search(
    settings: Settings, counter: TokenCounter
) -> AsyncIterator[WebSearch | None]:
    """The configured web search (None when off); its connections close on exit."""
    if settings.search_provider == "off":
        yield None
        return
    problem = search_problem(settings)
    if problem:
        log.error("web search is misconfigured: %s", problem)
        raise ConfigError(problem)
    reader = PageReader(
        settings.search_page_timeout, settings.search_page_bytes, settings.search_allow_private
    )
    # The search API is trusted configuration (often on localhost): its own session.
    async with aiohttp.ClientSession() as session:
        try:
            yield WebSearch(
                make_provider(settings, session),
                reader,
                counter,
                settings.search_results,
                settings.search_read_pages,
                settings.search_tokens,
                settings.search_max_calls,
            )
        finally:
            await reader.close()
