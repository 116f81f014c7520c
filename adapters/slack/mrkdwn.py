"""Markdown (as models write it) → Slack mrkdwn.

Slack has `*bold*`, `_italic_`, `~strike~`, `<url|text>` links, `>` quotes and ``` blocks without
a language tag, and no headings or list syntax. `&`, `<` and `>` must be escaped everywhere;
Slack shows them as typed, also inside code, which is otherwise left exactly as written.

Nothing converted may notify a crowd: escaping turns a typed `<!channel>`, `<!here>`,
`<!everyone>` or `<!subteam^ID>` into plain text, and a Markdown link becomes a Slack link only
for an http(s) or mailto target (`[all](!channel)` would otherwise become `<!channel|all>`).
"""

from __future__ import annotations

import re

_FENCE = "```"
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

# Spans kept away from emphasis rules: inline code, links, bare URLs.
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[([^\]\n]+)\]\((\S+?)(?:\s+\"[^\"\n]*\")?\)")
_LINK_TARGET = re.compile(r"(?:https?://|mailto:)[^\s|<>]+", re.IGNORECASE)
_BARE_URL = re.compile(r"\bhttps?://[^\s<>()]+")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^(\s*)>\s?")
_BOLD_ITALIC = re.compile(r"\*\*\*(?!\s)(.+?)(?<!\s)\*\*\*")
_BOLD = re.compile(r"(\*\*|__)(?!\s)(.+?)(?<!\s)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?![\s*])(.+?)(?<![\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?!\s)(.+?)(?<!\s)~~")
# Bold becomes this marker until single-star italics are done, then `*`.
_BOLD_MARK = "\x01"


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def to_mrkdwn(markdown: str) -> str:
    """Convert a whole message; an unclosed ``` block (mid-stream) stays code to the end."""
    out: list[str] = []
    in_code = False
    for line in markdown.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(_FENCE):
            # Slack would show a language tag as the code's first line.
            indent = line[: len(line) - len(stripped)]
            out.append(indent + _FENCE if not in_code else line.rstrip())
            in_code = not in_code
        elif in_code:
            out.append(escape(line))
        else:
            out.append(_convert_line(line))
    return "\n".join(out)


def _convert_line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    quote = ""
    if match := _QUOTE.match(line):
        quote, line = match.group(1) + "> ", line[match.end() :]
    if match := _HEADING.match(line):
        return quote + _heading(match.group(1))
    line = _BULLET.sub(r"\1• ", line)
    return quote + _inline(line)


def _heading(text: str) -> str:
    # The heading is already bold: emphasis inside would toggle it off.
    plain = _BOLD.sub(r"\2", _BOLD_ITALIC.sub(r"\1", text))
    return f"*{_inline(plain)}*" if plain.strip() else ""


def _link(label: str, target: str) -> str:
    if _LINK_TARGET.fullmatch(target):
        return f"<{escape(target)}|{escape(label)}>"
    return escape(f"{label} ({target})")  # shown as text: no ping, no odd scheme


def _inline(text: str) -> str:
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"\x00{len(kept) - 1}\x00"

    text = _CODE_SPAN.sub(lambda m: keep(escape(m.group(0))), text)
    text = _LINK.sub(lambda m: keep(_link(m.group(1), m.group(2))), text)
    text = _BARE_URL.sub(lambda m: keep(escape(m.group(0))), text)
    text = escape(text)
    text = _BOLD_ITALIC.sub(rf"{_BOLD_MARK}_\1_{_BOLD_MARK}", text)
    text = _BOLD.sub(rf"{_BOLD_MARK}\2{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text).replace(_BOLD_MARK, "*")
    return _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text)
