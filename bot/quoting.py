"""Untrusted text for the model: search results, recalled messages, document passages and the
summary are quoted material, never instructions.

They go as `user` messages (only the persona is a `system` message), between markers the text
itself cannot close, after a line telling the model what the material is and not to obey it.
"""

from __future__ import annotations

import re

from bot.texts import say

OPEN = "<quoted>"
CLOSE = "</quoted>"
# Whatever could pass for a marker inside the quoted text is escaped (any case, any spacing).
_MARKER = re.compile(r"<(?=\s*/?\s*quoted)", re.IGNORECASE)


def _defuse(text: str) -> str:
    return _MARKER.sub("&lt;", text)


def quote(what: str, body: str) -> str:
    """`body` fenced as quoted material; `what` says what it is (e.g. "web search results")."""
    return f"{say('quote.intro', what=what)}\n{OPEN}\n{_defuse(body)}\n{CLOSE}"


def quoted_record(content: str) -> str:
    """A tool's record kept in the history (an earlier search), as the model reads it."""
    return quote(say("quote.record"), content)
