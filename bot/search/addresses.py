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


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052, RFC 8215)
# and the deprecated IPv4-compatible form `::a.b.c.d`.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it embeds one (mapped, compatible, NAT64,
    6to4, Teredo): `::7f00:1` reaches 127.0.0.1 on hosts that route it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in _NAT64):
        return last32
    if ip in _COMPATIBLE and int(ip) > 1:  # `::` and `::1` are not IPv4-compatible
        return last32
    return None


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local…); an
    IPv6 address that embeds an IPv4 address is judged as that IPv4 address."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
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
