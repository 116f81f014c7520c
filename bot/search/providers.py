"""Search providers: one query in, ranked results (title, URL, snippet) out.

Every provider raises `SearchFailed` for anything that goes wrong (unreachable, HTTP error,
timeout, a response of the wrong shape), so the caller has one thing to handle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from bot.search.config import search_url

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchFailed(Exception):
    """The provider could not answer; the message says why (for the log)."""


class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, count: int) -> list[SearchResult]: ...


def parse_results(items: object, url_key: str, snippet_key: str) -> list[SearchResult]:
    """Results from a provider's JSON list, skipping entries without an http(s) URL."""
    if not isinstance(items, list):
        raise SearchFailed(f"expected a list of results, got {type(items).__name__}")
    results = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        url = str(item.get(url_key) or "")
        if url.startswith(("http://", "https://")):
            results.append(
                SearchResult(
                    str(item.get("title") or url).strip(),
                    url,
                    str(item.get(snippet_key) or "").strip(),
                )
            )
    return results


class HttpProvider:
    """A JSON search API reached over HTTP at a configurable base URL."""

    name = "http"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        api_key: str | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.api_key = api_key

    async def _json(self, method: str, path: str, **request: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with self.session.request(
                method, url, timeout=self.timeout, **request
            ) as response:
                if response.status != 200:
                    raise SearchFailed(
                        f"{self.name} answered HTTP {response.status}"
                        + await _auth_problem(response)
                    )
                return await response.json(content_type=None)
        except TimeoutError as exc:
            raise SearchFailed(f"{self.name} timed out after {self.timeout.total}s") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            # Not the error's text: it carries the request URL, whose query is the search.
            raise SearchFailed(f"{self.name} failed: {type(exc).__name__}") from exc


async def _auth_problem(response: aiohttp.ClientResponse) -> str:
    """The provider's words on a refused key or quota (they tell the owner what to fix); other
    error pages may echo the query, so they are not kept."""
    if response.status not in (401, 402, 403, 429):
        return ""
    return ": " + (await response.text(errors="replace"))[:200]


class SearxNG(HttpProvider):
    name = "searxng"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        data = await self._json("GET", "/search", params={"q": query, "format": "json"})
        if not isinstance(data, Mapping):
            raise SearchFailed("searxng returned no result list")
        return parse_results(data.get("results"), "url", "content")[:count]


class Tavily(HttpProvider):
    name = "tavily"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        data = await self._json(
            "POST",
            "/search",
            json={"query": query, "max_results": count},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        if not isinstance(data, Mapping):
            raise SearchFailed("tavily returned no result list")
        return parse_results(data.get("results"), "url", "content")[:count]


class Brave(HttpProvider):
    name = "brave"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        data = await self._json(
            "GET",
            "/res/v1/web/search",
            params={"q": query, "count": str(count)},
            headers={"X-Subscription-Token": self.api_key or "", "Accept": "application/json"},
        )
        web = data.get("web") if isinstance(data, Mapping) else None
        if not isinstance(web, Mapping):
            return []  # Brave leaves out "web" when nothing matched
        return parse_results(web.get("results"), "url", "description")[:count]


class DuckDuckGo:
    """DuckDuckGo through the ddgs package (synchronous: it runs in a worker thread)."""

    name = "duckduckgo"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    async def search(self, query: str, count: int) -> list[SearchResult]:
        # Imported here: it is slow to import and only this provider needs it.
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException

        def run() -> list[dict[str, Any]]:
            return DDGS(timeout=max(1, round(self.timeout))).text(
                query, max_results=count, backend="duckduckgo"
            )

        try:
            # The thread cannot be cancelled, but the reply need not wait for it.
            items = await asyncio.wait_for(asyncio.to_thread(run), self.timeout)
        except TimeoutError as exc:
            raise SearchFailed(f"duckduckgo timed out after {self.timeout}s") from exc
        except DDGSException as exc:
            if "no results" in str(exc).lower():
                return []
            raise SearchFailed(f"duckduckgo failed: {type(exc).__name__}") from exc
        return parse_results(items, "href", "body")[:count]


def make_provider(settings: Settings, session: aiohttp.ClientSession) -> SearchProvider:
    """The configured provider (settings already checked by `search_problem`)."""
    kind, timeout = settings.search_provider, settings.search_timeout
    if kind == "duckduckgo":
        return DuckDuckGo(timeout)
    http: dict[str, type[SearxNG | Tavily | Brave]] = {
        "searxng": SearxNG,
        "tavily": Tavily,
        "brave": Brave,
    }
    key = {"tavily": settings.tavily_api_key, "brave": settings.brave_api_key}.get(kind)
    return http[kind](session, search_url(settings), timeout, key)
