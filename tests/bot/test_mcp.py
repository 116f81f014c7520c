"""MCP tools end to end: real MCP servers (the reference `mcp-server-time` over stdio, small SDK
servers over stdio and streamable HTTP) called by the fake model through the real core."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.core import Parley
from bot.mcp.toolbox import McpToolbox
from bot.messages import Outcome
from bot.runtime import open_parley
from bot.texts import say
from tests.conftest import SettingsFactory
from tests.fakes.mcp_server import HttpMcp, serve_http, stdio_command
from tests.fakes.model_server import FakeModel, Reply, prompt_tokens, tool_call
from tests.helpers import ALICE, BOB, KEY, ask, until

TIME_SERVER = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))

OpenWith = Callable[..., AbstractAsyncContextManager[Parley]]


@pytest.fixture
async def http_mcp() -> AsyncIterator[HttpMcp]:
    async with serve_http("notes") as server:
        yield server


@pytest.fixture
def with_mcp(make_settings: SettingsFactory, tmp_path: Path) -> OpenWith:
    """A Parley with these `mcpServers` (override any setting too)."""

    @asynccontextmanager
    async def open_with(servers: dict[str, Any], **overrides: object) -> AsyncIterator[Parley]:
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
        values: dict[str, object] = {"mcp_config": path, "context_tokens": 8000}
        async with open_parley(make_settings(**{**values, **overrides})) as parley:
            yield parley

    return open_with


def toolbox(parley: Parley) -> McpToolbox:
    source = parley.tool_sources[0]
    assert isinstance(source, McpToolbox)
    return source


def offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def calls(*calls: dict[str, Any]) -> Reply:
    return Reply("", tool_calls=list(calls))


async def test_model_calls_time_over_stdio_and_notes_over_http(
    with_mcp: OpenWith, fake_model: FakeModel, http_mcp: HttpMcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TIME_SERVER, "mcp-server-time is a test dependency"
    monkeypatch.setenv("NOTES_TOKEN", "notes-secret-1234")
    servers = {
        "time": {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]},
        "notes": {"url": http_mcp.url, "headers": {"Authorization": "Bearer ${NOTES_TOKEN}"}},
    }
    fake_model.script(
        calls(
            tool_call("time__get_current_time", {"timezone": "Asia/Seoul"}, "c1"),
            tool_call("notes__add", {"a": 2, "b": 3}, "c2"),
        ),
        Reply("It is evening in Seoul, and 2 + 3 = 5."),
    )
    async with with_mcp(servers) as parley:
        final = await ask(parley, "What time is it in Seoul, and what is 2 + 3?")
        assert final.outcome is Outcome.OK
        first, second = fake_model.requests
        assert {"time__get_current_time", "time__convert_time", "notes__echo"} <= set(
            offered(first)
        )
        seoul, total = tool_messages(second)
        assert '"timezone": "Asia/Seoul"' in seoul and "+09:00" in seoul
        assert json.loads(total) == {"sum": 5}
        assert final.text == (
            "It is evening in Seoul, and 2 + 3 = 5.\n\n"
            + say("tools.used", tools="time/get_current_time, notes/add")
        )
        assert any(h.get("authorization") == "Bearer notes-secret-1234" for h in http_mcp.headers)

        conversation = await parley.store.conversation(KEY)
        stored = await parley.store.messages(conversation.id)
        assert [(m.role, m.author_id) for m in stored] == [
            ("user", ALICE.id),
            ("system", "time__get_current_time"),
            ("system", "notes__add"),
            ("assistant", "parley"),
        ]
        assert stored[1].content.startswith('[tool time/get_current_time {"timezone": "Asia/Seoul"}]')
        assert stored[1].tokens == parley.counter.count(stored[1].content)

        fake_model.script(Reply("It was 5."))
        await ask(parley, "What was the sum again?")
        follow_up = "\n".join(str(m["content"]) for m in fake_model.requests[-1]["messages"])
        assert '[tool notes/add {"a": 2, "b": 3}]\n{\n  "sum": 5\n}' in follow_up
