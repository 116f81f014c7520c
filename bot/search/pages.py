"""Reading result pages: download with a timeout and a size cap, then keep the main text.

Pages are untrusted: only http(s), only public addresses (unless configured otherwise, see
`addresses`), redirects followed by hand so every hop is checked, and at most `max_bytes` read.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from bot.search.addresses import BlockedAddress, PublicOnlyResolver, check_literal

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 5
_READABLE = ("text/html", "application/xhtml+xml", "text/plain")
_HEADERS = {
    "User-Agent": "Parley/0.1 (chatbot; reads pages it cites)",
    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9",
}


class PageUnreadable(Exception):
    """The page could not be fetched or held no readable text; the message says why (never
    the URL: its query can hold what a person searched for)."""


def extract_text(html: str) -> str:
    """The article text of a page, without navigation, ads and footers (CPU-bound)."""
    import trafilatura  # only with search on: trafilatura and lxml cost ~11 MB resident

    return (
        trafilatura.extract(html, include_comments=False, include_tables=True, favor_precision=True)
        or ""
    )


class PageReader:
    def __init__(self, timeout: float, max_bytes: int, allow_private: bool = False) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self.allow_private else PublicOnlyResolver()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver), headers=_HEADERS
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def read(self, url: str) -> str:
        """The readable text of the page at `url`; PageUnreadable if there is none."""
        try:
            async with asyncio.timeout(self.timeout):
                body, content_type, charset = await self._download(url)
        except TimeoutError as exc:
            raise PageUnreadable(f"no answer within {self.timeout}s") from exc
        except (aiohttp.ClientError, BlockedAddress) as exc:
            # The error's text can carry the URL and its query: the kind of failure is enough.
            reason = str(exc) if isinstance(exc, BlockedAddress) else type(exc).__name__
            raise PageUnreadable(reason) from exc
        text = _decode(body, charset)
        if content_type != "text/plain":
            # Parsing a large page takes long enough to stall other conversations.
            text = await asyncio.to_thread(extract_text, text)
        if not text.strip():
            raise PageUnreadable("no main text found")
        return text.strip()

    async def _download(self, url: str) -> tuple[bytes, str, str | None]:
        for _ in range(_MAX_REDIRECTS + 1):
            target = URL(url)
            if target.scheme not in ("http", "https") or not target.host:
                raise PageUnreadable("not an http(s) URL")
            if not self.allow_private:
                check_literal(target.host)
            async with self._client().get(target, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise PageUnreadable(f"HTTP {response.status}")
                if response.content_type not in _READABLE:
                    raise PageUnreadable(f"{response.content_type} is not a web page")
                return await self._body(response), response.content_type, response.charset
        raise PageUnreadable(f"more than {_MAX_REDIRECTS} redirects")

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """At most `max_bytes` of the body: a truncated page still yields its opening text."""
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) >= self.max_bytes:
                break
        return bytes(body[: self.max_bytes])


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
