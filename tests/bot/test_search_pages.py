"""Reading result pages: address checks (no SSRF), limits, redirects and main-text extraction,
over real HTTP to pages on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.search.addresses import BlockedAddress, PublicOnlyResolver, check_literal, is_public
from bot.search.pages import PageReader, PageUnreadable
from tests.fakes.search_server import FakeSearch

ARTICLE = """<html><head><title>Tides</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About us</a> <a href="/shop">Shop</a></nav>
<article><h1>Tides in Brest</h1>
<p>High tide in Brest is at 14:02 today, with a coefficient of 95, which is a spring tide.</p>
<p>Low tide follows at 20:15. Expect strong currents near the harbour entrance all evening.</p>
</article>
<footer>Copyright 2026 Example Harbour Office. All rights reserved.</footer>
</body></html>"""


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.20.30.40", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        # IPv6 forms that carry an IPv4 address are judged as that address.
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::7f00:1", False),
        ("::a9fe:a9fe", False),  # 169.254.169.254
        ("64:ff9b::127.0.0.1", False),  # NAT64
        ("64:ff9b::10.0.0.1", False),
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo client 127.0.0.1
        ("64:ff9b::93.184.215.14", True),
        ("2002:5db8:d70e::1", True),  # 6to4 of 93.184.215.14
        ("::", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_check_literal() -> None:
    for host in ("10.0.0.1", "127.0.0.1", "[::1]", "169.254.169.254"):
        with pytest.raises(BlockedAddress):
            check_literal(host)
    check_literal("93.184.215.14")
    check_literal("example.org")  # names are checked when resolved


async def test_resolver_refuses_names_of_private_addresses() -> None:
    resolver = PublicOnlyResolver()
    with pytest.raises(BlockedAddress):
        await resolver.resolve("localhost", 80)
    await resolver.close()


@pytest.fixture
async def reader() -> AsyncIterator[PageReader]:
    reader = PageReader(timeout=2.0, max_bytes=50_000, allow_private=True)
    yield reader
    await reader.close()


@pytest.fixture
async def strict_reader() -> AsyncIterator[PageReader]:
    reader = PageReader(timeout=2.0, max_bytes=50_000)
    yield reader
    await reader.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/tides",
        "http://localhost:{port}/tides",
        "http://[::1]:{port}/tides",
        "http://10.0.0.1/tides",
        "http://169.254.169.254/latest",
        "http://[::7f00:1]:{port}/tides",
        "http://[64:ff9b::7f00:1]:{port}/tides",
        "http://[2002:7f00:1::]:{port}/tides",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
    ],
)
async def test_private_and_odd_urls_are_refused(
    url: str, strict_reader: PageReader, fake_search: FakeSearch
) -> None:
    fake_search.page("/tides", ARTICLE)
    with pytest.raises(PageUnreadable):
        await strict_reader.read(url.format(port=fake_search.port))
    assert fake_search.page_hits == []


@pytest.mark.parametrize("host", ["[::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:a00:1::1]"])
async def test_ipv4_in_ipv6_is_refused_before_connecting(
    host: str, strict_reader: PageReader
) -> None:
    with pytest.raises(PageUnreadable, match="not a public address"):
        await strict_reader.read(f"http://{host}/latest")


async def test_reads_main_text_only(reader: PageReader, fake_search: FakeSearch) -> None:
    fake_search.page("/tides", ARTICLE)
    text = await reader.read(fake_search.url("/tides"))
    assert "High tide in Brest is at 14:02" in text and "Low tide follows" in text
    assert "About us" not in text and "Copyright" not in text


async def test_follows_redirects(reader: PageReader, fake_search: FakeSearch) -> None:
    fake_search.page("/old", "", status=301, headers={"Location": "/tides"})
    fake_search.page("/tides", ARTICLE)
    assert "14:02" in await reader.read(fake_search.url("/old"))
    assert fake_search.page_hits == ["/old", "/tides"]


async def test_redirect_loops_end(reader: PageReader, fake_search: FakeSearch) -> None:
    fake_search.page("/loop", "", status=302, headers={"Location": "/loop"})
    with pytest.raises(PageUnreadable, match="redirects"):
        await reader.read(fake_search.url("/loop"))


async def test_size_cap(reader: PageReader, fake_search: FakeSearch) -> None:
    paragraph = "<p>" + "The harbour opens at dawn and closes at dusk every day. " * 5 + "</p>"
    fake_search.page("/big", "<html><body><article>" + paragraph * 20_000 + "</article></body>")
    text = await reader.read(fake_search.url("/big"))
    assert "harbour opens at dawn" in text
    assert len(text) < reader.max_bytes


async def test_plain_text_kept_and_other_types_refused(
    reader: PageReader, fake_search: FakeSearch
) -> None:
    fake_search.page("/notes.txt", "Plain notes: tide at 14:02.", content_type="text/plain")
    fake_search.page("/file.pdf", b"%PDF-1.7", content_type="application/pdf")
    assert await reader.read(fake_search.url("/notes.txt")) == "Plain notes: tide at 14:02."
    with pytest.raises(PageUnreadable, match="not a web page"):
        await reader.read(fake_search.url("/file.pdf"))
    with pytest.raises(PageUnreadable, match="HTTP 404"):
        await reader.read(fake_search.url("/missing"))


async def test_slow_page_times_out(fake_search: FakeSearch) -> None:
    fake_search.page("/tides", ARTICLE, delay=2.0)
    reader = PageReader(timeout=0.2, max_bytes=50_000, allow_private=True)
    try:
        with pytest.raises(PageUnreadable, match="no answer"):
            await reader.read(fake_search.url("/tides"))
    finally:
        await reader.close()
