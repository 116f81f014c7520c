"""A window read for a larger budget, narrowed to a smaller one and a floor (`WindowRead.within`:
the prompt's read started before its sections are known), is what a read for those gives."""

from __future__ import annotations

import random
from collections.abc import Sequence

from sqlalchemy import insert

from memory.keys import ConversationKey
from memory.store import Store
from memory.tables import Message
from memory.window import AFTER_ALL, StoredMessage

KEY = ConversationKey("test", "w", "c")
PER_MESSAGE = 4


def _before(
    stored: Sequence[StoredMessage], start: int, after_id: int, room: int
) -> list[StoredMessage]:
    """The newest messages below `start` and above `after_id` that fit `room`, oldest first."""
    fitting: list[StoredMessage] = []
    for message in sorted(stored, key=lambda m: -m.id):
        if message.id >= start:
            continue
        room -= message.tokens + PER_MESSAGE
        if message.id <= after_id or room < 0:
            break
        fitting.append(message)
    return fitting[::-1]


async def test_a_wider_read_narrowed_is_the_read_for_the_smaller_budget(store: Store) -> None:
    sizes = random.Random(7)
    conversation = await store.conversation(KEY)
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(Message),
            [
                {
                    "conversation_id": conversation.id,
                    "role": "user" if n % 2 else "assistant",
                    "author_id": "a",
                    "author_name": "Alice",
                    "content": f"message {n}",
                    "tokens": sizes.randint(1, 60),
                }
                for n in range(400)
            ],
        )
    stored = await store.messages(conversation.id)
    wide = await store.window_read(conversation, AFTER_ALL, 3000, PER_MESSAGE)
    ids = [row[0] for row in wide.rows]
    told = 0
    for budget in (0, 1, 40, 700, 1500, 2999, 3000):
        for floor in (0, ids[0], ids[len(ids) // 2], ids[-1]):
            direct = await store.window_read(conversation, AFTER_ALL, budget, PER_MESSAGE, floor)
            narrowed = wide.within(budget, PER_MESSAGE, floor)
            assert list(map(tuple, narrowed.rows)) == list(map(tuple, direct.rows))
            # The summary's next batch from the earlier messages, wherever it stopped before
            # (None: the read did not reach back far enough to tell; it reads them itself).
            start = narrowed.rows[0][0] if narrowed.rows else AFTER_ALL
            for after_id in (0, ids[0] - 50, ids[len(ids) // 3]):
                for room in (30, 400, 5000):
                    earlier = narrowed.earlier.fitting(after_id, room, PER_MESSAGE)
                    if earlier is not None:
                        told += 1
                        assert earlier == _before(stored, start, after_id, room)
    assert told > 50
    assert wide.within(3000, PER_MESSAGE, 0) is wide
