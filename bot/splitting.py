"""Split a long reply into platform-sized messages without breaking code blocks."""

from __future__ import annotations

FENCE = "```"
_CLOSE = "\n" + FENCE


def open_fence(text: str) -> str | None:
    """The language tag of a ``` block still open at the end of `text` ("" if untagged)."""
    language: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            language = stripped[len(FENCE) :].strip() if language is None else None
    return language


def _cut_point(text: str, start: int, end: int) -> int:
    """Where to end a chunk in text[:end]: a paragraph, else a line, else a word boundary."""
    for separator in ("\n\n", "\n", " "):
        index = text.rfind(separator, start, end)
        # A boundary very early in the chunk would leave a tiny message; cut harder instead.
        if index > start + (end - start) // 3:
            return index
    return end


def split_message(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, split at paragraph, line, then word; a code block
    cut in two is closed and reopened with its language. No chunk is empty."""
    chunks: list[str] = []
    reopen = ""
    rest = text
    while rest:
        body = reopen + rest
        if len(body) <= limit:
            chunks.append(body)
            break
        cut = _cut_point(body, len(reopen), limit - len(_CLOSE))
        piece, rest = body[:cut], body[cut:]
        language = open_fence(piece)
        if language is not None:
            piece = piece.rstrip("\n") + _CLOSE
            reopen = f"{FENCE}{language}\n"
            rest = rest.removeprefix("\n")
        else:
            reopen = ""
            rest = rest.lstrip("\n").removeprefix(" ")
        if piece.strip():
            chunks.append(piece)
    return [chunk for chunk in chunks if chunk.strip()]
