"""PARLEY_MCP_CONFIG parsing, tool names, and `parley doctor` starting the servers for real."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bot.mcp.config import HttpServer, StdioServer, parse_mcp_config
from bot.mcp.tool import function_names
from bot.settings import ConfigError, load_settings
from tests.fakes.mcp_server import serve_http
from tests.fakes.model_server import FakeModel
from tests.process import parley_env, run_parley

TIME_SERVER = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
PATH = Path("mcp.json")


def test_both_transports_with_allow_list_and_admin_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_TOKEN", "t0ken-value")
    config = parse_mcp_config(
        json.dumps(
            {
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"A": "1"}},
                    "tracker": {
                        "type": "http",
                        "url": "https://tracker.example/mcp?key=abc123",
                        "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}"},
                        "tools": ["search"],
                        "admin_only": True,
                    },
                    "old": {"command": "x", "disabled": True},
                }
            }
        ),
        PATH,
    )
    time, tracker = config.servers["time"], config.servers["tracker"]
    assert isinstance(time, StdioServer) and time.args == ["mcp-server-time"]
    assert isinstance(tracker, HttpServer) and tracker.admin_only and tracker.tools == ["search"]
    assert tracker.headers == {"Authorization": "Bearer t0ken-value"}
    assert "old" not in config.servers
    assert set(config.secrets()) >= {"1", "Bearer t0ken-value", "abc123"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "mcp.json is invalid: Expecting property name"),
        ('{"servers": {}}', 'needs an "mcpServers" object'),
        ('{"mcpServers": {"a": {"command": "x", "arg": []}}}', "a.arg: Extra inputs"),
        ('{"mcpServers": {"a": {"url": "ftp://x"}}}', "a.url: Value error, must start with http"),
        ('{"mcpServers": {"a": {"type": "sse", "url": "http://x/sse"}}}', "old SSE transport"),
        ('{"mcpServers": {"a": {"command": "${NOPE_NOT_SET}"}}}', "${NOPE_NOT_SET}, which is not"),
        ('{"mcpServers": {"a.b": {"command": "x"}, "a_b": {"command": "y"}}}', "same names"),
        ('{"mcpServers": {"***": {"command": "x"}}}', "needs a letter or digit"),
    ],
)
def test_bad_configuration_is_named(text: str, error: str) -> None:
    path = Path("mcp.json")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(openai_api_key="sk-x", mcp_config=path)
    assert error in str(raised.value)
    assert str(raised.value).startswith("PARLEY_MCP_CONFIG: ")


def test_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"cannot read absent\.json"):
        load_settings(openai_api_key="sk-x", mcp_config=Path("absent.json"))


def test_function_names_are_unique_and_valid() -> None:
    names = function_names("my server.v2", ["get time", "get_time", "x" * 80, "ok-name", "日本"])
    assert names["get time"] == "my_server_v2__get_time"
    assert names["get_time"].startswith("my_server_v2__get_time_") and len(names["get_time"]) < 64
    assert names["ok-name"] == "my_server_v2__ok-name"
    assert len(set(names.values())) == 5
    for name in names.values():
        assert len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


async def test_doctor_starts_each_server_and_names_those_that_fail(
    fake_model: FakeModel, sqlite_url: str, tmp_path: Path
) -> None:
    assert TIME_SERVER
    path = tmp_path / "mcp.json"
    async with serve_http("notes") as notes:
        servers = {
            "time": {"command": TIME_SERVER},
            "notes": {"url": notes.url, "tools": ["echo"]},
            "ghost": {"command": str(tmp_path / "missing")},
        }
        path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
        env = parley_env(
            OPENAI_BASE_URL=fake_model.base_url,
            OPENAI_API_KEY="sk-test",
            PARLEY_DATABASE_URL=sqlite_url,
            PARLEY_MCP_CONFIG=str(path),
        )
        doctor = await run_parley("doctor", env=env, within=60)
    assert doctor.code == 1, doctor.stdout + doctor.stderr
    shown = doctor.stdout
    assert "[ ok ] MCP time: started; tools (2): get_current_time, convert_time" in shown
    assert "[ ok ] MCP notes: started; tools (1): echo" in shown
    assert "[FAIL] MCP ghost: did not answer: FileNotFoundError" in shown
    assert "fix: Check its command or URL in PARLEY_MCP_CONFIG" in shown
    assert shown.count("[FAIL]") == 1
