"""Token counts are summed from cached word counts: the same figures as tiktoken's count of each
text whole."""

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


def _whole(counter: TokenCounter, texts: list[str]) -> list[int]:
    return [len(counter.encoding.encode(text, disallowed_special=())) for text in texts]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4"])  # o200k_base, cl100k_base
def test_counts_are_tiktokens(model: str) -> None:
    rng = random.Random(14)
    texts = ["".join(rng.choices(_PIECES, k=rng.randint(0, 30))) for _ in range(20_000)]
    texts += ["", " ", "  ", " a", "a ", "a  b", "a \tb", "a \u00a0b", "x 123 4567 !! ?x"]
    texts += ["\n".join(texts[n : n + 40]) for n in range(0, 2_000, 40)]  # long ones
    counter = TokenCounter(model)
    whole = _whole(counter, texts)
    for _ in range(2):  # then from the cache
        assert counter.count_many(texts) == whole
        assert [counter.count(text) for text in texts] == whole


def test_the_word_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import memory.tokens

    monkeypatch.setattr(memory.tokens, "_MAX_WORDS", 50)
    monkeypatch.setattr(memory.tokens, "_RECENT_WORDS", 20)
    counter = TokenCounter("gpt-4o-mini")
    texts = [f"w{n} x{n} y{n}" for n in range(500)] + ["a" * 500]
    assert counter.count_many(texts) == _whole(counter, texts)
    assert [counter.count(text) for text in texts] == _whole(counter, texts)
    for words, limit in ((counter._many, 50), (counter._recent, 20)):
        assert words is not None
        assert len(words._first) + len(words._words) <= limit + 3
