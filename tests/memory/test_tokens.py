"""`count_many` sums cached word counts: the same figures as counting each text whole."""

from __future__ import annotations

import random

import pytest

from memory.tokens import TokenCounter

# Spaces next to every kind of whitespace, punctuation, digits, contractions, CJK, emoji,
# combining marks and a special token's text: where a cut between words could go wrong.
_PIECES = [
    *"abcXYZ019 .,'!?-/\t\n\r",
    *[" "] * 6,
    *["\u00a0", "\u3000", "\u2028", "\x1c", "\x85", "\u0301", "é", "안", "녕", "日本", "😀"],
    *["'s", "'LL", "<|endoftext|>", "  ", " \n", "\n ", "[Ann]", "1234567"],
]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4"])  # o200k_base, cl100k_base
def test_count_many_counts_as_count_does(model: str) -> None:
    rng = random.Random(14)
    texts = ["".join(rng.choices(_PIECES, k=rng.randint(0, 30))) for _ in range(20_000)]
    texts += ["", " ", "  ", " a", "a ", "a  b", "a \tb", "a \u00a0b", "x 123 4567 !! ?x"]
    counter = TokenCounter(model)
    assert counter.count_many(texts) == [counter.count(text) for text in texts]
    assert counter.count_many(texts) == [counter.count(text) for text in texts]  # cached


def test_the_word_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import memory.tokens

    monkeypatch.setattr(memory.tokens, "_MAX_WORDS", 50)
    counter = TokenCounter("gpt-4o-mini")
    texts = [f"w{n} x{n} y{n}" for n in range(500)] + ["a" * 500]
    assert counter.count_many(texts) == [counter.count(text) for text in texts]
    words = counter._words
    assert words is not None
    assert len(words._first) + len(words._words) <= 50 + 3
