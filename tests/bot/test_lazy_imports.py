"""Stacks for features that are off are not loaded at start: they cost resident memory."""

from __future__ import annotations

import subprocess
import sys

from tests.process import REPO, parley_env

# numpy (embeddings), trafilatura/lxml (web pages), ddgs (web search), pypdf (shared PDFs), mcp
# (MCP servers), prometheus_client (PARLEY_METRICS_PORT), kiwipiepy (Korean), rich and
# prompt_toolkit (the interactive terminal).
_HEAVY = (
    "numpy",
    "trafilatura",
    "lxml",
    "ddgs",
    "pypdf",
    "mcp",
    "mcp_types",
    "prometheus_client",
    "kiwipiepy",
    "rich",
    "prompt_toolkit",
)


def test_starting_the_bot_loads_no_optional_stack() -> None:
    script = (
        "import sys, bot.runtime, bot.cli, adapters.terminal\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({_HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=parley_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
