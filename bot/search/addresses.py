"""Keep result-page fetches off private networks (SSRF): a crafted result URL must not make the
bot read the cloud metadata service, the router or a service on localhost.

Hostnames are checked by a resolver plugged into the HTTP client, so the addresses checked are
the addresses connected to (no second lookup an attacker's DNS could answer differently); IP
literals never reach a resolver and are checked before each request, redirects included.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult


class BlockedAddress(Exception):
    """The URL leads to an address that is not on the public internet."""


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local…)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal(host: str) -> None:
    """Refuse `host` if it is an IP literal outside the public internet; names pass through."""
    try:
        public = is_public(host.strip("[]"))
    except ValueError:
        return  # a hostname: the resolver checks what it resolves to
    if not public:
        raise BlockedAddress(f"{host} is not a public address")


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default, and refuses a name if any of its addresses is private."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        private = [entry["host"] for entry in found if not is_public(entry["host"])]
        if private:
            raise BlockedAddress(f"{host} resolves to {', '.join(private)}")
        return found

    async def close(self) -> None:
        await self._resolver.close()
