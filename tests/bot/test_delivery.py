"""What a crash's left-overs are edited into (`bot.delivery.mending`): a notice, or the finished
reply when the crash came during its last edit."""

from __future__ import annotations

from bot.delivery import mending
from bot.texts import say
from memory.inflight import LeftOver


def left(posted: int, final: str | None = None) -> LeftOver:
    return LeftOver(1, "C1", tuple(str(n) for n in range(posted)), final)


def test_an_unfinished_reply_becomes_a_notice_and_its_other_messages_go() -> None:
    assert mending(left(3), 100) == [say("shutdown.cut"), "", ""]


def test_a_finished_reply_is_shown_whole() -> None:
    assert mending(left(1, "The answer."), 100) == ["The answer."]


def test_a_finished_reply_fills_the_messages_it_had_and_frees_the_rest() -> None:
    text = "first paragraph " * 4 + "\n\n" + "second paragraph " * 4
    parts = mending(left(3, text), 80)
    assert parts[0].startswith("first paragraph") and parts[1].startswith("second paragraph")
    assert parts[2] == ""


def test_more_text_than_messages_posted_is_cut_with_a_marker() -> None:
    text = "\n\n".join(f"paragraph {n} " * 5 for n in range(6))
    [only] = mending(left(1, text), 80)
    assert only.endswith(say("reply.cut")) and len(only) <= 80 + len(say("reply.cut"))


def test_nothing_recorded_means_nothing_to_edit_by_id() -> None:
    assert mending(left(0), 100) == []
