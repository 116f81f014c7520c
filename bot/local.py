"""The terminal's conversations, named with `--conversation` in `parley chat` and in the
`parley memory` commands, and the person at the terminal."""

from __future__ import annotations

import getpass

from bot.messages import Author, ConversationKey

PLATFORM = "terminal"


def terminal_key(conversation: str) -> ConversationKey:
    return ConversationKey(platform=PLATFORM, workspace="local", channel=conversation)


def terminal_author() -> Author:
    # The terminal's user owns the machine, so admin commands are theirs.
    user = getpass.getuser()
    return Author(id=user, name=user, can_manage=True)
