"""Where a conversation lives: the key the store files it under (every adapter builds one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConversationKey:
    """Where a conversation lives. A thread is its own conversation; so is a DM."""

    platform: str
    workspace: str
    channel: str
    thread: str = ""

    def __str__(self) -> str:
        parts = (self.platform, self.workspace, self.channel, self.thread)
        return "/".join(part for part in parts if part)
