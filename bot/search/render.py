"""Search results as the model reads them, cut to a token budget, and as a compact record.

The results come first (title, URL, snippet, best first) and the read pages share what budget
is left, so a tight budget drops page text before it drops sources. Counting is exact.
CPU-bound: call it from a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.search.providers import SearchResult
from bot.tools import Source
from memory.tokens import TokenCounter

# A token rarely spans more characters than this: cutting a page to that many characters per
# budget token before the exact cut keeps tokenizing a long page cheap.
_CHARS_PER_TOKEN = 8
# The record keeps snippets short: it stays in the history for many turns.
_RECORD_SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Rendered:
    text: str
    tokens: int
    sources: tuple[Source, ...]


def header(query: str) -> str:
    return f'Web search results for "{query}". Cite a result by its number, like [1].'


def render_results(
    query: str,
    results: Sequence[SearchResult],
    pages: Mapping[int, str],
    first: int,
    counter: TokenCounter,
    budget: int,
) -> Rendered:
    """`results` numbered from `first`, then `pages` (by result position), within `budget`.

    With pages to show, the results take at most half the budget: a page's text says more
    than the last results' snippets.
    """
    text = header(query)
    listing = budget // 2 if pages else budget
    sources: list[Source] = []
    for position, result in enumerate(results):
        number = first + position
        head = f"\n\n[{number}] {result.title}\n{result.url}"
        room = listing - counter.count(text + head) - 1  # 1: the newline before the snippet
        if room < 0:
            break
        text += head + "\n" + _cut(result.snippet, room, counter)
        sources.append(Source(number, result.title, result.url))
    shown = [(position, pages[position]) for position in range(len(sources)) if position in pages]
    for index, (position, page) in enumerate(shown):
        label = f"\n\nText of [{first + position}]:\n"
        share = (budget - counter.count(text)) // (len(shown) - index) - counter.count(label)
        if share <= 0:
            break
        text += label + _cut(page, share, counter)
    # Pieces counted apart can merge into different tokens: the whole is what counts.
    if counter.count(text) > budget:
        text = counter.truncate(text, budget)
    return Rendered(text, counter.count(text), tuple(sources))


def _cut(text: str, tokens: int, counter: TokenCounter) -> str:
    return counter.truncate(text[: tokens * _CHARS_PER_TOKEN], tokens).rstrip()


def render_record(query: str, results: Sequence[SearchResult], sources: Sequence[Source]) -> str:
    """The search as it stays in the conversation: query and numbered results, no page text."""
    lines = [f'[web search for "{query}"]']
    for source, result in zip(sources, results, strict=False):
        snippet = result.snippet[:_RECORD_SNIPPET_CHARS]
        lines.append(
            f"[{source.number}] {source.title} — {source.url}"
            + (f"\n    {snippet}" if snippet else "")
        )
    return "\n".join(lines)
