"""Markdown → Slack mrkdwn, and Slack text → what the model reads."""

from __future__ import annotations

import pytest

from adapters.slack.events import from_slack
from adapters.slack.mrkdwn import to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        (
            "see [the docs](https://example.com/a_b?x=1&y=2)",
            "see <https://example.com/a_b?x=1&amp;y=2|the docs>",
        ),
        ("![diagram](https://example.com/d.png)", "<https://example.com/d.png|diagram>"),
        ("# Title", "*Title*"),
        ("### A **bold** heading ###", "*A bold heading*"),
        ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted **words**", "> quoted *words*"),
        ("---", "──────────"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("url https://x.com/a_b_c_d stays", "url https://x.com/a_b_c_d stays"),
        ("inline `**not bold** <x>` code", "inline `**not bold** &lt;x&gt;` code"),
    ],
)
def test_inline_and_line_syntax(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_code_blocks_lose_their_language_and_nothing_else() -> None:
    markdown = "Run:\n```python\n# not a heading\nx = **y** * _z_\n- not a list\n```\n**done**"

    assert to_mrkdwn(markdown) == (
        "Run:\n```\n# not a heading\nx = **y** * _z_\n- not a list\n```\n*done*"
    )


def test_an_unclosed_block_mid_stream_stays_code() -> None:
    assert to_mrkdwn("```sh\necho *hi*") == "```\necho *hi*"


def test_slack_text_for_the_model() -> None:
    assert from_slack("<@U0PARLEY> is a &lt; b &amp;&amp; c?", "U0PARLEY") == "is a < b && c?"
