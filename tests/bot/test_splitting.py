"""Splitting long replies for platforms with a message limit."""

from __future__ import annotations

import pytest

from bot.splitting import open_fence, split_message


def fences_balanced(chunk: str) -> bool:
    return open_fence(chunk) is None


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 2000) == ["hello"]
    assert split_message("", 2000) == []


def test_prefers_paragraph_then_line_then_word() -> None:
    text = "a" * 900 + "\n\n" + "b" * 900 + "\n" + "c" * 900
    assert split_message(text, 2000) == ["a" * 900, "b" * 900 + "\n" + "c" * 900]
    lines = "a" * 900 + "\n" + "b" * 900 + " " + "c" * 900
    assert split_message(lines, 2000) == ["a" * 900, "b" * 900 + " " + "c" * 900]
    words = " ".join(["word"] * 1000)
    chunks = split_message(words, 2000)
    assert all(len(c) <= 2000 for c in chunks)
    assert " ".join(chunks) == words  # cut between words, nothing lost


def test_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"    value_{i} = compute({i})" for i in range(300))
    text = f"Here you go:\n\n```python\n{code}\n```\n\nThat's all."
    chunks = split_message(text, 2000)
    assert len(chunks) > 2 and all(0 < len(c) <= 2000 for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    for chunk in chunks[1:-1]:
        assert chunk.startswith("```python\n")
    rejoined = "".join(c.removeprefix("```python\n").removesuffix("\n```") for c in chunks[1:-1])
    assert "value_150 = compute(150)" in rejoined and "    value_299" in text


@pytest.mark.parametrize("limit", [100, 2000, 4000])
def test_no_chunk_is_empty_or_too_long(limit: int) -> None:
    text = ("\n\n\n" + "x" * 50 + " ```js\nlet a = 1;\n" * 80 + "```\n") * 3
    chunks = split_message(text, limit)
    assert chunks and all(c.strip() and len(c) <= limit for c in chunks)


def test_unbroken_text_is_hard_cut() -> None:
    chunks = split_message("x" * 4500, 2000)
    assert [len(c) for c in chunks] == [1996, 1996, 508]
