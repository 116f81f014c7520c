"""The bounded map behind every per-conversation, per-channel and per-person cache."""

from __future__ import annotations

from memory.bounded import Bounded


def test_the_least_recently_put_entry_goes_first() -> None:
    seen: Bounded[str, int] = Bounded(2)
    seen.put("a", 1)
    seen.put("b", 2)
    seen.put("a", 3)  # put again: now the most recent
    seen.put("c", 4)
    assert len(seen) == 2
    assert "b" not in seen
    assert (seen.get("a"), seen.get("c"), seen.get("b")) == (3, 4, None)
