"""PARLEY_MCP_CONFIG: the MCP servers to connect to, in the JSON format MCP clients share.

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "Asia/Seoul"}},
        "tracker": {"url": "https://tracker.example/mcp",
                    "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}"},
                    "tools": ["search_issues"], "admin_only": true}}}

`${VAR}` in a command, argument, env value, URL or header is read from Parley's environment, so
secrets need not sit in the file. `"type"` and `"disabled"` (written by other clients) are
understood; anything else unknown is an error, so a typo never goes unnoticed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.texts import say

# The OpenAI function-name alphabet; server names become tool-name prefixes.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PREFIX_CHARS = 24


class McpConfigError(Exception):
    """The MCP configuration file is unreadable or invalid; the message says where."""


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: list[str] | None = None  # allow-list of the server's own tool names
    admin_only: bool = False
    disabled: bool = False


class StdioServer(_Server):
    type: Literal["stdio"] | None = None
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None


class HttpServer(_Server):
    type: Literal["http", "streamable-http", "streamableHttp"] | None = None
    url: str
    headers: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


ServerConfig = StdioServer | HttpServer


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, ServerConfig] = Field(alias="mcpServers")

    def secrets(self) -> list[str]:
        """Values never to show in logs or chat: env values, header values, URL credentials."""
        found: list[str] = []
        for server in self.servers.values():
            if isinstance(server, StdioServer):
                found += server.env.values()
            else:
                found += server.headers.values()
                found += re.findall(r"//([^/@]+)@", server.url)
                found += re.findall(r"[?&][^=&#]+=([^&#]+)", server.url)
        return found


def prefix(name: str) -> str:
    """A server's name as the start of its tools' function names."""
    return _NAME_CHARS.sub("_", name)[:_PREFIX_CHARS]


def _expand(value: object, where: str) -> object:
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            if match.group(1) not in os.environ:
                raise McpConfigError(say("mcp.config.variable", name=match.group(1), where=where))
            return os.environ[match.group(1)]

        return _VARIABLE.sub(variable, value)
    if isinstance(value, list):
        return [_expand(item, where) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item, where) for key, item in value.items()}
    return value


def _server(name: str, raw: object, path: Path) -> ServerConfig:
    if not isinstance(raw, dict):
        raise McpConfigError(say("mcp.config.invalid", path=path, error=f"{name}: not an object"))
    if raw.get("type") == "sse":
        raise McpConfigError(say("mcp.config.sse", path=path, name=name))
    expanded = _expand(raw, f"{path}: {name}")
    model: type[ServerConfig] = HttpServer if "url" in raw else StdioServer
    try:
        return model.model_validate(expanded)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        error = f"{name}.{field}: {first['msg']}" if field else f"{name}: {first['msg']}"
        raise McpConfigError(say("mcp.config.invalid", path=path, error=error)) from exc


def parse_mcp_config(text: str, path: Path) -> McpConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(say("mcp.config.invalid", path=path, error=exc)) from exc
    servers = raw.get("mcpServers") if isinstance(raw, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(say("mcp.config.no_servers", path=path))
    parsed = {name: _server(name, value, path) for name, value in servers.items()}
    seen: dict[str, str] = {}
    for name in parsed:
        if not prefix(name).strip("_-"):
            raise McpConfigError(say("mcp.config.bad_name", path=path, name=name))
        other = seen.setdefault(prefix(name).lower(), name)
        if other != name:
            raise McpConfigError(say("mcp.config.same_prefix", path=path, a=other, b=name))
    active = {name: server for name, server in parsed.items() if not server.disabled}
    return McpConfig(mcpServers=active)


def load_mcp_config(path: Path) -> McpConfig:
    """Read and check the file (blocking: call it in a thread from async code)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        error = getattr(exc, "strerror", None) or exc
        raise McpConfigError(say("mcp.config.unreadable", path=path, error=error)) from exc
    return parse_mcp_config(text, path)


def mcp_config_problem(path: Path | None) -> str | None:
    """What is wrong with the MCP configuration, as one line; None when usable or unset."""
    if path is None:
        return None
    try:
        load_mcp_config(path)
    except McpConfigError as exc:
        return str(exc)
    return None
