"""Pytest fixtures around :class:`tests.fakes.slack_server.FakeSlack`.

Import them into a test module or conftest (``from tests.fakes.slack_fixtures import
fake_slack, slack_client``); pytest then injects them by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import FakeSlack


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A started FakeSlack, closed after the test."""
    async with FakeSlack() as fake:
        yield fake


@pytest_asyncio.fixture
async def slack_client(fake_slack: FakeSlack) -> AsyncWebClient:
    """A real AsyncWebClient talking to ``fake_slack`` with its bot token."""
    return AsyncWebClient(base_url=fake_slack.base_url, token=fake_slack.bot_token)
