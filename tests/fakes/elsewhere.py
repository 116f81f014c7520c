"""A host that is not the platform's: serves any path with a small text file (or a redirect)
and records who asked and with which Authorization header, to prove nothing was sent there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.serve import serve


@dataclass
class Elsewhere:
    port: int = 0
    hits: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    redirects: dict[str, str] = field(default_factory=dict)  # path → Location

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _any(self, request: web.Request) -> web.Response:
        self.hits.append((request.path, request.headers.get("Authorization")))
        if request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        return web.Response(text="secret plans from elsewhere", content_type="text/plain")


@asynccontextmanager
async def elsewhere() -> AsyncIterator[Elsewhere]:
    host = Elsewhere()
    app = web.Application()
    app.router.add_get("/{tail:.*}", host._any)
    async with serve(app) as port:
        host.port = port
        yield host
