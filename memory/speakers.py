"""Who said what, unforgeable: in the prompt a person's message reads "[name] text", so neither
a display name nor a line break in the text may produce a line that looks like someone else's.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Longest display name kept: platforms allow 32 (Discord) to 80 (Slack) characters.
MAX_NAME = 80
_NAME_SWAPS = str.maketrans({"[": "(", "]": ")"})
# A later line (after any line break Python or a tokenizer knows) that starts like "[name] …",
# the form of a speaker's line. "[section]" or "[link](…)" lines are left alone.
_SPEAKER_LIKE = re.compile(
    r"((?:\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029])[ \t]*)\[(?=[^\[\]\n]*\][ \t:])"
)


@lru_cache(maxsize=1024)  # rendered for every message of every window: few distinct names
def speaker_name(name: str) -> str:
    """A display name on one line, without brackets or control characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in name)
    return " ".join(printable.translate(_NAME_SWAPS).split())[:MAX_NAME] or "?"


def escape_lines(text: str) -> str:
    """`text` with every later line that starts like a speaker's ("[name] …") escaped as
    "\\[name] …", so it cannot pose as someone else's line."""
    if text.isprintable():  # no line break of any kind: one line (checked at C speed)
        return text
    return _SPEAKER_LIKE.sub(r"\1\\[", text)
