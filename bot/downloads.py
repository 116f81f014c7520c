"""Downloading a file a platform says was shared: only from the platform's own file hosts.

A message's file URL is data from the outside (Slack "remote files" carry any URL), so the
adapters name the origins their platform stores files on, and this refuses every other one:
the bot token goes nowhere else, a redirect to another origin is not followed, and the address
connected to must be public (the search reader's guard) unless the platform's API itself was
configured on a private address (a local stand-in).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Self
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from bot.search.addresses import BlockedAddress, PublicOnlyResolver, check_literal, is_public

_TIMEOUT = aiohttp.ClientTimeout(total=60)
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3


class NotFromPlatform(Exception):
    """The file is hosted elsewhere than the platform's own file hosts (or leads there)."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str | URL) -> Origin:
        parsed = URL(url)
        return cls(parsed.scheme, (parsed.host or "").lower(), parsed.port)


@dataclass(frozen=True)
class Downloaded:
    data: bytes  # at most `limit + 1` bytes: more than `limit` means the file is too large
    content_type: str


def private_allowed(api_url: str) -> bool:
    """Whether the platform API was configured on a non-public IP literal (e.g. a local
    stand-in): its file host is then private too. A name is always checked when resolved."""
    host = (URL(api_url).host or "").strip("[]")
    try:
        return not is_public(host)
    except ValueError:
        return False


class FileFetcher:
    """An HTTP session for one message's file downloads (`async with`)."""

    def __init__(self, origins: Collection[Origin], allow_private: bool) -> None:
        self.origins = frozenset(origins)
        self.allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def trusted(self, url: str) -> bool:
        return Origin.of(url) in self.origins

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self.allow_private else PublicOnlyResolver()
            self._session = aiohttp.ClientSession(
                timeout=_TIMEOUT, connector=aiohttp.TCPConnector(resolver=resolver)
            )
        return self._session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(
        self, url: str, limit: int, headers: Mapping[str, str] | None = None
    ) -> Downloaded:
        """At most `limit + 1` bytes of the file; NotFromPlatform for another origin (also
        after a redirect) or a private address; aiohttp.ClientError for HTTP failures."""
        for _ in range(_MAX_REDIRECTS + 1):
            if not self.trusted(url):
                raise NotFromPlatform("not on the platform's file host")
            target = URL(url)
            try:
                if not self.allow_private:
                    check_literal(target.host or "")
                async with self._client().get(
                    target, headers=headers, allow_redirects=False
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in (301, 302, 303, 307, 308) and location:
                        url = urljoin(url, location)
                        continue
                    response.raise_for_status()
                    return Downloaded(await _body(response, limit), response.content_type)
            except BlockedAddress as exc:
                raise NotFromPlatform("not a public address") from exc
        raise NotFromPlatform("too many redirects")


async def _body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    # The size the platform reported is not trusted: stop just past the limit.
    async for chunk in response.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            break
    return bytes(data[: limit + 1])
