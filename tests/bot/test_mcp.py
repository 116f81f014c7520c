"""MCP tools end to end: real MCP servers (the reference `mcp-server-time` over stdio, small SDK
servers over stdio and streamable HTTP) called by the fake model through the real core."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.core import Parley
from bot.logs import Redactor
from bot.mcp.config import StdioServer
from bot.mcp.server import McpServer, ServerUnavailable
from bot.mcp.toolbox import McpToolbox
from bot.messages import Author, ChannelKind, ConversationKey, Facts, Inbound, Outcome
from bot.runtime import open_parley
from bot.texts import say, use_locale
from tests.conftest import SettingsFactory
from tests.fakes.mcp_server import HttpMcp, serve_http, stdio_command
from tests.fakes.model_server import FakeModel, Reply, prompt_tokens, tool_call
from tests.helpers import ALICE, BOB, KEY, ask, collect, until

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
        assert stored[1].content.startswith(
            '[tool time/get_current_time {"timezone": "Asia/Seoul"}]'
        )
        assert stored[1].tokens == parley.counter.count(stored[1].content)

        fake_model.script(Reply("It was 5."))
        await ask(parley, "What was the sum again?")
        follow_up = "\n".join(str(m["content"]) for m in fake_model.requests[-1]["messages"])
        assert '[tool notes/add {"a": 2, "b": 3}]\n{\n  "sum": 5\n}' in follow_up


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains `marker` (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


async def test_failures_never_break_a_reply(
    with_mcp: OpenWith, fake_model: FakeModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mcp")
    marker = f"marker-{uuid.uuid4().hex}"  # unique: other test runs may be alive
    servers = {
        "fake": stdio_command(marker),
        "ghost": {"command": str(tmp_path / "no-such-server")},
    }
    fake_model.context_window = 8000
    fake_model.script(
        calls(tool_call("fake__slow", {"seconds": 30})),
        Reply("The slow tool timed out."),
        calls(tool_call("fake__shout", {"text": "hi"})),
        Reply("It refused."),
        calls(tool_call("fake__big", {"words": 5000})),
        Reply("That was long."),
        calls(tool_call("fake__die", {})),
        Reply("The server died."),
    )
    async with with_mcp(servers, tool_timeout=2.0, tool_tokens=120) as parley:
        assert "ghost__" not in " ".join(tool.name for tool in toolbox(parley).tools_for(True))
        [first_pid] = processes_with(marker)

        final = await ask(parley, "slow please")
        assert final.outcome is Outcome.OK
        told = tool_messages(fake_model.requests[-1])[0]
        assert told.startswith("The tool fake__slow failed: no answer within 2 s.")
        assert say("tools.failed", tool="fake/slow") in final.text

        await ask(parley, "shout please")
        assert tool_messages(fake_model.requests[-1])[0].startswith(
            "The tool reported an error:\nError executing tool shout: cannot shout 'hi'"
        )

        await ask(parley, "something long")
        long = tool_messages(fake_model.requests[-1])[0]
        assert long.startswith("word0 word1") and long.endswith(
            "[… result cut to fit the context window]"
        )
        assert parley.counter.count(long) <= 120
        for request in fake_model.requests:
            used = prompt_tokens(request["messages"], fake_model.counter, request.get("tools"))
            assert used + request["max_tokens"] <= 8000

        assert processes_with(marker) == [first_pid]  # one process, reused by every call
        final = await ask(parley, "die please")
        assert final.text.startswith("The server died.")
        assert "fake__die failed" in tool_messages(fake_model.requests[-1])[0]
        server = toolbox(parley).servers[0]
        await until(lambda: server.starts == 2, within=15)
        assert first_pid not in processes_with(marker)
        fake_model.script(calls(tool_call("fake__pid", {})), Reply("Back."))
        await ask(parley, "pid?")
        second_pid = int(tool_messages(fake_model.requests[-1])[0])
        assert second_pid != first_pid and processes_with(marker) == [second_pid]
        os.kill(second_pid, signal.SIGKILL)  # dies between calls: noticed and restarted too
        await until(lambda: server.starts == 3, within=15)
        assert len(processes_with(marker)) == 1 and second_pid not in processes_with(marker)

        tools = (await ask(parley, "/tools")).text
        assert (
            "`fake__echo`" in tools and "ghost is not running right now (FileNotFoundError" in tools
        )
    assert processes_with(marker) == []
    logged = caplog.text
    assert "MCP server ghost failed to start" in logged
    assert "MCP server fake stopped unexpectedly; restarting" in logged
    assert "MCP server fake: fake server: dying now" in logged  # its stderr, in our log


async def test_a_server_that_hangs_at_start_is_given_up_on(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"  # unique: other test runs may be alive
    config = StdioServer(**stdio_command("--hang-on-start", marker))
    server = McpServer("stuck", config, timeout=5, redact=Redactor(), start_timeout=0.5)
    with pytest.raises(ServerUnavailable, match=r"did not answer within 0\.5 s"):
        await server.connect()
    assert processes_with(marker) == []  # killed when it timed out
    with pytest.raises(ServerUnavailable, match="next start in"):
        await server.connect()  # no restart storm: it waits its turn
    await server.stop()


async def test_allow_list_admin_only_and_round_cap(
    with_mcp: OpenWith, fake_model: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_PROBE_SECRET", "not for servers")
    servers = {
        "fake": {**stdio_command(), "tools": ["echo", "add"]},
        "ops": {**stdio_command(), "admin_only": True, "env": {"OPS_MODE": "blue"}},
    }
    async with with_mcp(servers, tool_rounds=2) as parley:
        fake_model.script(
            calls(tool_call("fake__echo", {"text": "one"})),
            calls(
                tool_call("ops__env", {"name": "OPS_MODE"}, "c2"),
                tool_call("ops__env", {"name": "PARLEY_PROBE_SECRET"}, "c3"),
            ),
            Reply("Done."),
        )
        final = await ask(parley, "dig", author=ALICE)
        assert final.text.endswith(say("tools.used", tools="fake/echo, ops/env"))
        requests = fake_model.requests[-3:]
        # A stdio server gets its own env and a minimal environment, never Parley's.
        assert tool_messages(requests[2])[1:] == ["blue", "(unset)"]
        assert sorted(offered(requests[0])) == sorted(
            [
                "fake__echo",
                "fake__add",
                "ops__echo",
                "ops__add",
                "ops__shout",
                "ops__big",
                "ops__slow",
                "ops__die",
                "ops__env",
                "ops__pid",
            ]
        )
        assert [r.get("tool_choice") for r in requests[:3]] == ["auto", "auto", "none"]

        fake_model.script(calls(tool_call("ops__pid", {})), Reply("No."))
        await ask(parley, "pid?", author=BOB)
        bob_asked = fake_model.requests[-2:]
        assert offered(bob_asked[0]) == ["fake__echo", "fake__add"]
        assert tool_messages(bob_asked[1]) == [
            "Not run: there is no tool named 'ops__pid'. Answer with what you have."
        ]

        # Owning a DM makes one its admin, not an admin of admin-only tools.
        dm = Inbound(
            ConversationKey("test", "dm", "d1"),
            Author("u-dan", "Dan", is_admin=True),
            "hi",
            facts=Facts(kind=ChannelKind.DM),
        )
        await collect(parley, dm)
        assert offered(fake_model.requests[-1]) == ["fake__echo", "fake__add"]

        listed = (await ask(parley, "/tools", author=BOB)).text
        assert "`fake__echo`" in listed and "ops__" not in listed
        use_locale("ko")
        korean = (await ask(parley, "/tools", author=BOB)).text
        assert korean.startswith("이 대화에서 쓸 수 있는 도구:\n• `fake__echo` — [fake] Say")
        use_locale("en")
        assert (
            "`ops__pid` — [ops] The server's process id."
            in (await ask(parley, "/tools", author=ALICE)).text
        )


async def test_an_http_server_that_goes_away(with_mcp: OpenWith, fake_model: FakeModel) -> None:
    async with AsyncExitStack() as stack:
        notes = await stack.enter_async_context(serve_http("notes"))
        async with with_mcp({"notes": {"url": notes.url}}) as parley:
            await stack.aclose()  # the server stops while Parley runs
            fake_model.script(calls(tool_call("notes__echo", {"text": "hi"})), Reply("Sorry."))
            final = await ask(parley, "echo hi")
            assert final.text == "Sorry.\n\n" + say("tools.used", tools="notes/echo (failed)")
            told = tool_messages(fake_model.requests[-1])[0]
            assert told.startswith("The tool notes__echo failed: MCPError: Connection closed.")
            server = toolbox(parley).servers[0]
            await until(lambda: server.problem is not None and "ConnectError" in server.problem)
