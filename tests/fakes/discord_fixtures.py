"""Pytest fixture for the fake Discord server.

Use it from a conftest (``pytest_plugins = ["tests.fakes.discord_fixtures"]``) or import it into
a test module (``from tests.fakes.discord_fixtures import fake_discord``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fakes.discord_server import FakeDiscord

__all__ = ["FakeDiscord", "fake_discord"]


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord; discord.py points at it until the test ends."""
    async with FakeDiscord() as fake:
        yield fake
