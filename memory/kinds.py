"""What kind of place a conversation lives in, as its platform reports it. Stored with the
conversation, so queries can keep private conversations to themselves."""

from __future__ import annotations

from enum import StrEnum


class ChannelKind(StrEnum):
    CHANNEL = "channel"  # public: anyone in the workspace can read it
    PRIVATE = "private"  # a private channel or thread: only its members
    DM = "dm"  # one person and Parley
    GROUP_DM = "group_dm"  # a few people and Parley, outside any channel
    UNKNOWN = ""  # not reported: treated as private, and never overwrites a known kind


# Conversations other conversations may recall from (PARLEY_RECALL_SCOPE=workspace).
SHARED_KINDS = (ChannelKind.CHANNEL,)
