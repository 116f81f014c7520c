"""Slack traffic for pipeline tests: many conversations (threads and DMs) of marked messages,
posted to real `parley run` processes the way Slack posts them.

Each event is posted until a process answers 200 within Slack's 3 seconds; a failed or slow
post is re-sent with `X-Slack-Retry-Num` (to the other process when there are two, as a load
balancer would). A conversation's next message is written only once the previous one was
acknowledged, so Slack's `ts` order is the order the bot was told about them. Some events
acknowledged already are sent again (Slack's duplicate deliveries), to any process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import ClientError

from tests.fakes.faulty_model import marker
from tests.fakes.slack_server import GENERAL, RANDOM, FakeSlack, Json

# Slack's own limit: an event not acknowledged within 3 seconds is retried.
SLACK_ACK_TIMEOUT = 3.0
# Pause before re-sending an event that was not acknowledged.
RETRY_PAUSE = 0.3
# Posts of one event before giving up on it (about a minute of a process being down).
MAX_POSTS = 150


@dataclass
class Sent:
    """A message of the workload, once written: its marker and its Slack event."""

    number: int
    mark: str
    body: Json
    acknowledged: bool = False


@dataclass
class Conversation:
    """A thread under a channel mention, or a DM's top level; one person talks in it."""

    number: int
    channel: str
    user: str
    dm: bool
    korean: bool = False  # the person writes Korean (Parley's first audience)
    root: str | None = None  # a thread's first ts, once its first message is written
    sent: list[Sent] = field(default_factory=list)

    @property
    def thread(self) -> str | None:
        """Where the bot answers: the thread's ts (a DM's top level: None)."""
        return None if self.dm else self.root


def conversations(fake: FakeSlack, count: int, korean_every: int = 0) -> list[Conversation]:
    """`count` conversations, every third a DM, one in `korean_every` in Korean (0: none);
    each has its own person."""
    made = []
    for number in range(count):
        user = f"U0P{number:04d}"
        fake.add_user(user, f"person{number}", f"Person {number}")
        dm = number % 3 == 0
        channel = fake.dm_channel(user).id if dm else (GENERAL, RANDOM)[number % 2]
        korean = korean_every > 0 and number % korean_every == 1
        made.append(Conversation(number, channel, user, dm, korean))
    return made


def write(fake: FakeSlack, conversation: Conversation) -> Sent:
    """The conversation's next message as a Slack event (recorded in the fake's history)."""
    number = len(conversation.sent)
    mark = marker(conversation.number, number)
    text = f"메모 {mark}: 회의 {number}번" if conversation.korean else f"note {mark}: item {number}"
    if conversation.dm:
        body = fake.dm_event(text, user=conversation.user)
    else:
        body = fake.app_mention_event(
            text, user=conversation.user, channel=conversation.channel, thread_ts=conversation.root
        )
        conversation.root = conversation.root or str(body["event"]["ts"])
    sent = Sent(number, mark, body)
    conversation.sent.append(sent)
    return sent


@dataclass
class Sender:
    """Posts events to the processes at `urls` like Slack; counts what happened."""

    fake: FakeSlack
    urls: list[str]
    seed: int
    redeliver: float = 0.1  # share of acknowledged events Slack sends once more
    acknowledged_events: list[Sent] = field(default_factory=list)  # in the order of their acks
    refused: int = 0  # events never acknowledged
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest_ack: float = 0.0
    first_sent: float = 0.0
    _later: set[asyncio.Task[None]] = field(default_factory=set)
    _acked: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def post(self, body: Json, target: int, retry_num: int | None) -> int | None:
        """One signed post; the HTTP status, or None when nothing answered in time."""
        started = time.monotonic()
        self.first_sent = self.first_sent or started
        try:
            response = await self.fake.post_signed(
                self.urls[target % len(self.urls)],
                body,
                retry_num=retry_num,
                timeout=SLACK_ACK_TIMEOUT,
            )
        except (ClientError, TimeoutError):
            self.outcomes["no answer"] += 1
            return None
        self.outcomes[str(response.status)] += 1
        if response.status == 200:
            self.slowest_ack = max(self.slowest_ack, time.monotonic() - started)
        return response.status

    async def deliver(self, sent: Sent, target: int) -> None:
        """Post until acknowledged; each retry goes to the next process."""
        for attempt in range(MAX_POSTS):
            status = await self.post(sent.body, target, attempt or None)
            if status == 200:
                sent.acknowledged = True
                self.acknowledged_events.append(sent)
                self._acked.set()
                if self._random.random() < self.redeliver:
                    self.again(sent, target + 1, self._random.uniform(0.1, 2.0))
                return
            target += 1
            await asyncio.sleep(RETRY_PAUSE)
        self.refused += 1

    async def acknowledged_at_least(self, count: float) -> None:
        while len(self.acknowledged_events) < count:
            self._acked.clear()
            await self._acked.wait()

    def again(self, sent: Sent, target: int, after: float) -> None:
        """Slack delivers `sent` once more, `after` seconds from now, to process `target`."""

        async def later() -> None:
            await asyncio.sleep(after)
            status = await self.post(sent.body, target % len(self.urls), 1)
            self.outcomes["re-delivered" if status == 200 else "re-delivery failed"] += 1

        task = asyncio.create_task(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def converse(
        self, conversation: Conversation, messages: int, gap: tuple[float, float], start: float
    ) -> None:
        """Write and deliver the conversation's messages, `gap` seconds apart."""
        await asyncio.sleep(start)
        for _ in range(messages):
            sent = write(self.fake, conversation)
            await self.deliver(sent, (conversation.number + sent.number) % len(self.urls))
            await asyncio.sleep(self._random.uniform(*gap))

    async def settle(self) -> None:
        """Wait for the re-deliveries still scheduled."""
        while self._later:
            await asyncio.gather(*self._later, return_exceptions=True)
