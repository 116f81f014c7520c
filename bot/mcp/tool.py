"""One MCP server tool offered to the model as a function, e.g. `time__get_current_time`.

A call runs on the server within PARLEY_TOOL_TIMEOUT; its content becomes text counted exactly
and cut to the budget with a marker. Any failure (server down, dead, slow, erroring) becomes a
result telling the model the call failed: it never raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time

import mcp_types as types
from openai.types.chat import ChatCompletionFunctionToolParam

from bot.mcp.config import prefix
from bot.mcp.server import FAILURES, McpServer, ServerUnavailable, describe
from bot.texts import say
from bot.tools import ToolResult
from memory.tokens import TokenCounter

log = logging.getLogger(__name__)

_NAME_MAX = 64  # the OpenAI function-name limit
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_DESCRIPTION_CHARS = 1000
_RECORD_TOKENS = 150
_RECORD_ARGUMENT_CHARS = 200
# Tokenizing is linear: never hand it more characters than a cut result could hold.
_CHARS_PER_TOKEN = 16
_OFFLOAD_CHARS = 20_000
_CUT = "\n[… result cut to fit the context window]"
_FAILED = (
    "The tool {name} failed: {why}. Answer with what you have and tell the person the tool "
    "did not work."
)
_ERROR = "The tool reported an error:\n"


def function_names(server: str, tools: list[str]) -> dict[str, str]:
    """Each tool's function name: `<server>__<tool>`, in the OpenAI alphabet, at most 64
    characters, unique (a hash of the original tells apart names that cleaning made equal)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for tool in tools:
        name = f"{prefix(server)}__{_NAME_CHARS.sub('_', tool)}"
        if len(name) > _NAME_MAX or name.lower() in taken:
            digest = hashlib.sha1(f"{server}/{tool}".encode()).hexdigest()[:8]
            name = f"{name[: _NAME_MAX - 9]}_{digest}"
        taken.add(name.lower())
        names[tool] = name
    return names


def render_content(result: types.CallToolResult) -> str:
    """The call's result as text for the model (images and binary resources are named only)."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type} ({block.mime_type}) not shown]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource: {resource.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts) or "(no output)"
    return _ERROR + text if result.is_error else text


def fit(text: str, tokens: int, counter: TokenCounter, marker: str = _CUT) -> str:
    """`text` within `tokens`, cut with `marker` when it does not fit."""
    head = text[: tokens * _CHARS_PER_TOKEN]
    if head == text and counter.count(text) <= tokens:
        return text
    room = tokens - counter.count(marker)
    if room <= 0:
        return counter.truncate(marker.strip(), tokens)
    return counter.truncate(head, room).rstrip() + marker


class McpTool:
    max_calls: int | None = None  # bounded by PARLEY_TOOL_ROUNDS and the budget only

    def __init__(
        self,
        server: McpServer,
        tool: types.Tool,
        name: str,
        counter: TokenCounter,
        room: int,
    ) -> None:
        self.server = server
        self.tool = tool
        self.name = name
        self.counter = counter
        self.room = room
        self.label = f"{server.name}/{tool.name}"

    @property
    def description(self) -> str:
        text = self.tool.description or self.tool.title or self.tool.name
        return f"[{self.server.name}] {text}"[:_DESCRIPTION_CHARS]

    @property
    def definition(self) -> ChatCompletionFunctionToolParam:
        parameters: dict[str, object] = dict(self.tool.input_schema or {})
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    def arguments_for(self, text: str) -> str:
        return "{}"

    async def run(self, arguments: str, budget: int, first_source: int) -> ToolResult:
        limit = max(min(budget, self.room), 0)
        try:
            parsed = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return self._failed("its arguments were not a JSON object", limit)
        started = time.monotonic()
        try:
            result = await self.server.call(self.tool.name, parsed)
        except ServerUnavailable as exc:
            return self._failed(f"the server {self.server.name!r} is not running ({exc})", limit)
        except TimeoutError:
            return self._failed(f"no answer within {self.server.timeout:g} s", limit)
        except FAILURES as exc:
            return self._failed(self.server.redact(describe(exc)), limit)
        except Exception as exc:  # a surprise from the SDK must not break the reply
            log.exception("MCP tool %s: unexpected failure", self.label)
            return self._failed(self.server.redact(describe(exc)), limit)
        text = render_content(result)
        if len(text) > _OFFLOAD_CHARS:
            content = await asyncio.to_thread(fit, text, limit, self.counter)
        else:
            content = fit(text, limit, self.counter)
        record, tokens = self._record(arguments, content), self.counter.count(content)
        log.info(
            "MCP tool %s answered in %.2f s: %d tokens%s",
            self.label,
            time.monotonic() - started,
            tokens,
            " (cut to fit)" if content is not text else "",
        )
        return ToolResult(
            content,
            tokens,
            record,
            self.counter.count(record),
            used=self.label,
        )

    def _record(self, arguments: str, content: str) -> str:
        """The call as it stays in the conversation: what was asked and the start of the answer."""
        asked = arguments.strip()[:_RECORD_ARGUMENT_CHARS]
        return fit(f"[tool {self.label} {asked}]\n{content}", _RECORD_TOKENS, self.counter, " […]")

    def _failed(self, why: str, budget: int) -> ToolResult:
        log.warning("MCP tool %s failed: %s", self.label, why)
        text = self.counter.truncate(_FAILED.format(name=self.name, why=why), budget)
        label = say("tools.failed", tool=self.label)
        return ToolResult(text, self.counter.count(text), used=label)
