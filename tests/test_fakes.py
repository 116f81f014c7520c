"""The fakes stay quiet about what real servers shrug off."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.fakes.model_server import FakeModel, Reply


async def test_a_caller_gone_before_the_reply_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    # A bot killed (or past its timeout) while the model was still thinking: the fake found the
    # connection closed when it started its reply, and aiohttp logged a traceback.
    async with FakeModel() as model:
        model.script(Reply("late", delay=0.3))
        async with aiohttp.ClientSession() as session:
            request = session.post(
                f"{model.base_url}/chat/completions",
                json={"model": "gpt-4o-mini", "stream": True, "messages": []},
            )
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await request
        with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
            await asyncio.sleep(0.5)  # the fake starts its reply
        assert len(model.requests) == 1
    assert not [r for r in caplog.records if r.name == "aiohttp.server"]
