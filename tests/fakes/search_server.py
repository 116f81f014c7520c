"""Fake web-search APIs (SearxNG, Tavily, Brave) and web pages on 127.0.0.1.

    async def test_x(fake_search, make_settings):     # the `fake_search` fixture
        fake_search.add("Parley 2 released", "https://example.org/p2", "Parley 2 is out.")
        settings = make_settings(search_provider="searxng", search_url=fake_search.base_url)

Every provider route answers with the same `results`, in its own JSON shape; `status`, `delay`
and `results = []` make it fail, hang or find nothing. `page(path, body)` serves a page at
`url(path)` (a loopback address: only fetched with `search_allow_private`). Requests to the
APIs are kept in `requests`, page fetches in `page_hits`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.serve import serve


@dataclass(frozen=True)
class Hit:
    title: str
    url: str
    snippet: str


@dataclass(frozen=True)
class SearchRequest:
    provider: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class FakeSearch:
    def __init__(self) -> None:
        self.results: list[Hit] = []
        self.status = 200
        self.delay = 0.0
        self.requests: list[SearchRequest] = []
        self.page_hits: list[str] = []
        self._pages: dict[str, tuple[int, dict[str, str], bytes, float]] = {}
        self._stack = AsyncExitStack()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def add(self, title: str, url: str, snippet: str) -> None:
        self.results.append(Hit(title, url, snippet))

    def page(
        self,
        path: str,
        body: str | bytes,
        content_type: str = "text/html",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._pages[path] = (status, {"Content-Type": content_type, **(headers or {})}, data, delay)

    async def __aenter__(self) -> FakeSearch:
        app = web.Application()
        app.router.add_get("/search", self._searxng)
        app.router.add_post("/search", self._tavily)
        app.router.add_get("/res/v1/web/search", self._brave)
        app.router.add_get("/{path:.*}", self._page)
        self.port = await self._stack.enter_async_context(serve(app, shutdown_timeout=0.1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _answer(
        self, request: web.Request, provider: str, query: str, payload: dict[str, Any]
    ) -> web.Response:
        self.requests.append(SearchRequest(provider, query, dict(request.headers)))
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": "injected failure"}, status=self.status)
        return web.json_response(payload)

    async def _searxng(self, request: web.Request) -> web.Response:
        if request.query.get("format") != "json":
            return web.Response(status=403, text="JSON format not enabled")
        results = [{"title": h.title, "url": h.url, "content": h.snippet} for h in self.results]
        return await self._answer(
            request,
            "searxng",
            request.query["q"],
            {"query": request.query["q"], "results": results},
        )

    async def _tavily(self, request: web.Request) -> web.Response:
        body = await request.json()
        results = [
            {"title": h.title, "url": h.url, "content": h.snippet, "score": 0.9}
            for h in self.results
        ][: body.get("max_results", 5)]
        return await self._answer(
            request, "tavily", body["query"], {"query": body["query"], "results": results}
        )

    async def _brave(self, request: web.Request) -> web.Response:
        results = [{"title": h.title, "url": h.url, "description": h.snippet} for h in self.results]
        payload: dict[str, Any] = {"type": "search"}
        if results:
            payload["web"] = {"type": "search", "results": results}
        return await self._answer(request, "brave", request.query["q"], payload)

    async def _page(self, request: web.Request) -> web.Response:
        self.page_hits.append(request.path)
        if request.path not in self._pages:
            return web.Response(status=404, text="not found")
        status, headers, body, delay = self._pages[request.path]
        await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def fake_search() -> AsyncIterator[FakeSearch]:
    async with FakeSearch() as server:
        yield server
