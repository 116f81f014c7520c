"""Keeping a local reasoning model's thinking out of the answer.

DeepSeek-R1, QwQ, Qwen3 and others served by llama.cpp, Ollama or vLLM either put their
reasoning in the content between `<think>` and `</think>` (before the answer), or send it in a
separate `reasoning_content` field. Neither is shown, stored or counted as history.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkingFilter:
    """Feed content pieces as they stream; get back only the answer's text.

    A reply is reasoning until `</think>` if it starts (after whitespace) with `<think>`. The
    start is held back until it is clear whether it does, since a tag may arrive in pieces.
    """

    def __init__(self) -> None:
        self._pending = ""  # the start, until it shows whether it opens with <think>
        self._state = "start"  # start → thinking → answer, or start → answer
        self.thought = False  # some reasoning was seen (and dropped)
        self._lead = False  # the answer after </think>: its leading blank lines go too

    def feed(self, piece: str) -> str:
        if self._state == "answer":
            if self._lead:
                piece = piece.lstrip()
                self._lead = not piece
            return piece
        self._pending += piece
        if self._state == "start":
            head = self._pending.lstrip()
            if head.startswith(OPEN):
                self._state, self.thought = "thinking", True
                self._pending = head[len(OPEN) :]
            elif OPEN.startswith(head):
                return ""  # could still become <think>: wait for more
            else:
                self._state, text, self._pending = "answer", self._pending, ""
                return text
        end = self._pending.find(CLOSE)
        if end < 0:
            # Keep only a tail that might be the start of the closing tag.
            self._pending = self._pending[-(len(CLOSE) - 1) :]
            return ""
        self._state, self._lead = "answer", True
        rest, self._pending = self._pending[end + len(CLOSE) :], ""
        return self.feed(rest)

    def finish(self) -> str:
        """What is held back when the stream ends (a reply too short to tell, e.g. "<")."""
        if self._state == "start":
            self._state, text, self._pending = "answer", self._pending, ""
            return text
        return ""
