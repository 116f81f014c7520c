"""Index words for Korean, Chinese and Japanese text, shared by indexing and queries.

Whole space-separated chunks are useless search words in these languages: Korean glues
particles and endings onto words (서울에서, 먹었어요), Chinese and Japanese use no spaces.
So every stored text with such characters gets an extra `terms` column, indexed beside the
content, and queries are analyzed the same way:

- Korean: the content morphemes found by Kiwi (kiwipiepy), a real morphological analyzer.
  Nouns, numbers, foreign words and roots are kept as they are, verb and adjective stems as
  their dictionary form (먹었어요 → 먹다); particles and endings are dropped (서울에서 → 서울).
- Chinese and Japanese (Han and Kana runs): overlapping character bigrams, the scheme of
  Lucene's CJK analyzer (東京都 → 東京 京都).

Kiwi loads a ~100 MB model (about 2 s, ~300 MB of memory) on first use, in whatever thread
first needs it: callers on the event loop use `terms_off_loop`, and the runtime warms it up in
a worker thread when recall is on. Text without these scripts never loads it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

_HANGUL_CHARS = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f"
_HAN_KANA_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HANGUL = re.compile(f"[{_HANGUL_CHARS}]")
_HAN_KANA = re.compile(f"[{_HAN_KANA_CHARS}]+")
_CJK = re.compile(f"[{_HANGUL_CHARS}{_HAN_KANA_CHARS}]")
_WORD = re.compile(r"[^\W_]+")
# Kiwi tags (before any "-I"/"-R" irregular-conjugation suffix) whose morphemes carry meaning.
_CONTENT = frozenset({"NNG", "NNP", "NR", "SL", "SN", "SH", "XR"})
_PREDICATE = frozenset({"VV", "VA"})
# Long texts are analyzed up to here (PostgreSQL's tsvector is bounded, and so is the time).
_MAX_CHARS = 20_000

_lock = threading.Lock()
_kiwi: Kiwi | None = None


def has_cjk(text: str) -> bool:
    # `isascii` reads a flag of the string: ASCII text is not scanned at all (an import's
    # batch of 5,000 messages: ~1 µs a message through the pattern).
    return not text.isascii() and _CJK.search(text) is not None


def lone_han_kana(term: str) -> bool:
    """A single Chinese or Japanese character: indexed only inside bigrams, so it is searched as
    their first character."""
    return len(term) == 1 and _HAN_KANA.fullmatch(term) is not None


def _analyzer() -> Kiwi:
    # Built once under the lock; Kiwi's author confirms one built instance may then analyze
    # from several threads at once (bab2min/Kiwi#145).
    global _kiwi
    with _lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi  # ~2 s with its model: only when Korean text is seen

            kiwi = Kiwi(load_typo_dict=False)
            kiwi.tokenize("준비")  # the model's parts load on first use: do it here
            _kiwi = kiwi
        return _kiwi


def warm_up() -> None:
    """Load the Korean analyzer now (blocking: run it in a worker thread)."""
    _analyzer()


def _korean(text: str) -> list[str]:
    words: list[str] = []
    for token in _analyzer().tokenize(text):
        tag = str(token.tag).split("-")[0]
        if tag in _PREDICATE:
            words.append(f"{token.form}다")
        elif tag in _CONTENT:
            words.append(token.form.lower())
    return [w for w in words if _WORD.fullmatch(w)]


def _bigrams(text: str) -> list[str]:
    grams: list[str] = []
    for run in _HAN_KANA.findall(text):
        grams += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return grams


def cjk_words(text: str) -> list[str]:
    """The index words of `text`'s Korean, Chinese and Japanese parts, in order, distinct.
    CPU-bound (and loads Kiwi on first Korean text): not on the event loop."""
    text = text[:_MAX_CHARS]
    words = _korean(text) if _HANGUL.search(text) else []
    return list(dict.fromkeys(words + _bigrams(text)))


def index_terms(text: str) -> str | None:
    """The `terms` column for a stored text: None when it has no CJK characters."""
    if not has_cjk(text):
        return None
    return " ".join(cjk_words(text)) or None


async def terms_off_loop(texts: Sequence[str]) -> list[str | None]:
    """`index_terms` of each text, in a worker thread when any needs analysis."""
    if not has_cjk("".join(texts)):  # one search of them all: 0.3 µs a text one by one
        return [None] * len(texts)
    return await asyncio.to_thread(lambda: [index_terms(text) for text in texts])
