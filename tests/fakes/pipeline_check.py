"""The invariants of a pipeline run, checked from the outside: the database's history, the
fake Slack's posts and the prompts the fake model received.

- stored once: every acknowledged event is an inbound item (answered by the end) and its
  message is in the history exactly once;
- answered once: one final reply per message in its conversation (a placeholder a crash left
  is edited into the restart notice, which is not a reply), the real answer for messages the
  fault plan lets through and a notice for the others — never silence, a "Thinking…"
  placeholder or a cursor;
- order: replies are posted in the order of the messages, and every prompt holds exactly the
  earlier messages of its conversation in order, and the answers to them — and no failed
  (cut, interrupted) reply, which is never stored as if complete;
- no leaks: a prompt or a reply holds only its own conversation's markers.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.slack.mrkdwn import to_mrkdwn
from bot.streaming import CURSOR
from bot.texts import EN
from tests.fakes.faulty_model import FaultPlan, ModelCall, marker, parse
from tests.fakes.slack_server import FakeSlack, Message
from tests.fakes.slack_traffic import Conversation

# Texts that tell the person a reply failed or was cut off (English: the tests' locale).
_NOTICE_KEYS = re.compile(r"^(error\.|reply\.|stream\.|empty_reply$)")
_SHOWN_AT_MOST = 20  # problems listed in a report


def _plain(text: str) -> str:
    """Text compared without mrkdwn/Markdown emphasis and spacing."""
    return re.sub(r"[\s_*~`]+", " ", text).strip()


def _fragments(keys: Iterable[str]) -> list[str]:
    """The longest literal piece of each text (its {placeholders} vary)."""
    return [
        max((_plain(piece) for piece in re.split(r"\{\w+\}", EN[key])), key=len) for key in keys
    ]


NOTICES = _fragments(key for key in EN if _NOTICE_KEYS.match(key))
RESTARTED = _fragments(["shutdown.cut"])[0]
PLACEHOLDER = _plain(to_mrkdwn(EN["slack.placeholder"]))


@dataclass
class Figures:
    acknowledged: int = 0
    stored: int = 0
    answered: int = 0  # with the real answer
    told: int = 0  # with a notice (the fault plan's failures)
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    stuck: int = 0  # left at a placeholder or a cursor
    leaked: int = 0
    cut_stored: int = 0  # a failed (cut, interrupted) reply stored as if complete
    mended: int = 0  # replies a crash cut off, edited into the restart notice
    seconds: float = 0.0  # from the first event posted to the last reply shown (mends aside)
    slowest_ack: float = 0.0  # seconds
    posts: Counter[str] = field(default_factory=Counter)  # Slack's posts of events, by outcome
    problems: list[str] = field(default_factory=list)

    def problem(self, kind: str, what: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.problems) < _SHOWN_AT_MOST:
            self.problems.append(f"{kind}: {what}")

    @property
    def per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds else 0.0


async def stored(database_url: str) -> tuple[dict[str, str] | None, Counter[tuple[int, int]]]:
    """What the database holds: the state of each stored event by its Slack ts (None without
    an inbound queue), and how often each message is in the history (people's messages)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT content FROM messages WHERE role='user'"))
            history = Counter(found for (content,) in rows for found in parse(content)[-1:])
            if not await connection.run_sync(lambda sync: inspect(sync).has_table("inbound")):
                return None, history
            rows = await connection.execute(
                text("SELECT event_key, state FROM inbound WHERE platform='slack'")
            )
            return {key.rsplit("/", 1)[-1]: state for key, state in rows}, history
    finally:
        await engine.dispose()


def posts(fake: FakeSlack, conversation: Conversation) -> list[Message]:
    """The bot's messages in the conversation's place, oldest first (deleted ones aside)."""
    return [
        message
        for message in fake.messages[conversation.channel]
        if message.thread_ts == conversation.thread and not message.deleted
    ]


def kind_of(message: Message) -> str:
    """ "answer", "restarted", "notice", "stuck" or "other"."""
    shown = _plain(message.text)
    if message.text.endswith(CURSOR) or shown == PLACEHOLDER:
        return "stuck"
    if RESTARTED in shown:
        return "restarted"
    if shown.startswith("ans "):
        return "answer"
    return "notice" if any(notice in shown for notice in NOTICES) else "other"


def replies_done(fake: FakeSlack, conversation: Conversation) -> bool:
    """Whether every acknowledged message of the conversation has its final reply."""
    kinds = [kind_of(message) for message in posts(fake, conversation)]
    final = [kind for kind in kinds if kind in ("answer", "notice", "other")]
    return "stuck" not in kinds and len(final) >= sum(s.acknowledged for s in conversation.sent)


def check_replies(
    figures: Figures, fake: FakeSlack, conversation: Conversation, plan: FaultPlan
) -> None:
    expected = [
        (s.number, "answer" if plan.answered(s.mark) else "notice")
        for s in conversation.sent
        if s.acknowledged
    ]
    shown: list[tuple[int | None, str]] = []
    for message in posts(fake, conversation):
        kind = kind_of(message)
        if kind == "restarted":
            figures.mended += 1
            continue
        if kind == "stuck":
            figures.problem("stuck", f"{message.text!r} in {conversation.number}")
            continue
        marks = parse(message.text)
        if any(c != conversation.number for c, _ in marks):
            figures.problem("leaked", f"{message.text!r} in conversation {conversation.number}")
        shown.append((marks[0][1] if kind == "answer" and marks else None, kind))
    _compare(figures, conversation.number, expected, shown)


def _compare(
    figures: Figures,
    conversation: int,
    expected: list[tuple[int, str]],
    shown: list[tuple[int | None, str]],
) -> None:
    """Replies shown against replies due, in order."""
    for kind in ("answer", "notice"):
        due = Counter(n if kind == "answer" else None for n, k in expected if k == kind)
        got = Counter(n for n, k in shown if k == kind)
        for number, count in (due - got).items():
            figures.problem("lost", f"{kind} to message {number} of {conversation}: {count}")
        for number, count in (got - due).items():
            figures.problem("duplicated", f"{kind} {number} in {conversation}: {count} more")
    due_kinds = [(n if k == "answer" else None, k) for n, k in expected]
    if len(shown) == len(due_kinds):
        for position, (got_one, due_one) in enumerate(zip(shown, due_kinds, strict=True)):
            if got_one != due_one:
                figures.problem(
                    "out_of_order", f"reply {position} of {conversation}: {got_one} ≠ {due_one}"
                )
    answers = [n for n, k in shown if k == "answer" and n is not None]
    for earlier, later in itertools.pairwise(answers):
        if later <= earlier:
            figures.problem("out_of_order", f"answer {later} after {earlier} in {conversation}")
    figures.answered += len({n for n, k in shown if k == "answer"} & {n for n, _ in expected})
    figures.told += min(
        sum(k == "notice" for _, k in shown), sum(k == "notice" for _, k in expected)
    )


def check_prompt(figures: Figures, call: ModelCall, plan: FaultPlan) -> None:
    """The prompt holds the conversation's earlier messages once each, in order, and the
    answers to those that were answered; nothing of another conversation."""
    conversation, number = call.asked
    earlier = call.prompt[:-1]
    if any(c != conversation for turn in call.prompt for c, _ in turn.markers):
        figures.problem("leaked", f"prompt of {call.asked} holds {call.prompt}")
        return
    people = [n for turn in earlier if turn.role == "user" for _, n in turn.markers]
    if people != list(range(number)):
        kind = "duplicated" if len(set(people)) < len(people) else "out_of_order"
        figures.problem(kind, f"prompt of {call.asked} (attempt {call.attempt}): {people}")
    answers = [n for turn in earlier if turn.role == "assistant" for _, n in turn.markers[:1]]
    due = [n for n in range(number) if plan.answered(marker(conversation, n))]
    if [n for n in answers if n in due] != due:
        figures.problem("out_of_order", f"answers in the prompt of {call.asked}: {answers}")
    if cut := [n for n in answers if n not in due]:
        figures.problem("cut_stored", f"failed replies {cut} in the prompt of {call.asked}")


def check_stored(
    figures: Figures,
    items: dict[str, str] | None,
    history: Counter[tuple[int, int]],
    conversations: list[Conversation],
) -> None:
    """Every acknowledged message is stored (an inbound item, answered by now) and in the
    history once."""
    for conversation in conversations:
        for sent in conversation.sent:
            if not sent.acknowledged:
                continue
            figures.acknowledged += 1
            count = history[(conversation.number, sent.number)]
            state = items.get(str(sent.body["event"]["ts"])) if items is not None else None
            if (items is None and count == 0) or (items is not None and state is None):
                figures.problem("lost", f"{sent.mark} acknowledged but never stored")
                continue
            figures.stored += 1
            if state not in (None, "answered"):
                figures.problem("lost", f"{sent.mark} left {state}")
            elif count == 0:
                figures.problem("lost", f"{sent.mark} answered but not in the history")
            if count > 1:
                figures.problem("duplicated", f"{sent.mark} in the history {count} times")
