"""The fake model's fault-injecting mode for pipeline tests: every message carries a marker
naming its conversation and its number there, and the faults a call meets depend only on the
seed and that marker (and on how often the marker was asked before), so a run is reproducible
and a retry behaves predictably whichever process or attempt makes it.

    plan = FaultPlan(seed=7, rate=0.1, hang=3.0)
    model = FaultyModel(fake_model, plan)   # fake_model.default now injects the faults
    ...
    model.calls                             # every reply call: marker, prompt markers, fault

Faults: a 429 on the first attempt only (answered after the retry), a connection dropped
before the first attempt's answer (answered after the retry), a 500 on every attempt, a hang
longer than the client's timeout, a stream ending without a finish reason, and a connection
dropped mid-stream. The last four end in a notice told to the person; `FaultPlan.answered`
says which markers must end in a real answer.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tests.fakes.model_server import Behaviour, BreakStream, Drop, Fail, FakeModel, Hang, Reply

# q<conversation>m<number>: unique per message, and a conversation's markers share a prefix.
MARKER = re.compile(r"\bq(\d{4})m(\d{4})\b")


def marker(conversation: int, number: int) -> str:
    return f"q{conversation:04d}m{number:04d}"


def parse(text: str) -> list[tuple[int, int]]:
    """Every marker in `text`: (conversation, number), in order."""
    return [(int(c), int(n)) for c, n in MARKER.findall(text)]


def answer_text(mark: str) -> str:
    """The model's real answer to the message marked `mark`."""
    return f"ans {mark} - noted, thank you."


class Fault(StrEnum):
    RATE_LIMITED_ONCE = "429 once"
    DROPPED_ONCE = "dropped once"
    SERVER_ERROR = "500"
    HANG = "hang"
    NO_FINISH = "no finish"
    BROKEN_STREAM = "broken stream"


# Faults the client's retry gets past: the message is answered all the same.
RETRIED = frozenset({Fault.RATE_LIMITED_ONCE, Fault.DROPPED_ONCE})


@dataclass(frozen=True)
class FaultPlan:
    seed: int
    rate: float = 0.1  # share of messages meeting a fault
    hang: float = 3.0  # seconds a hung call says nothing: longer than PARLEY_REQUEST_TIMEOUT

    def fault(self, mark: str) -> Fault | None:
        chooser = random.Random(f"{self.seed}/{mark}")
        if chooser.random() >= self.rate:
            return None
        return chooser.choice(list(Fault))

    def answered(self, mark: str) -> bool:
        """Whether the message marked `mark` ends in a real answer (else in a notice)."""
        fault = self.fault(mark)
        return fault is None or fault in RETRIED

    def delay(self, mark: str) -> float:
        """Seconds before the first byte of an answer: a few milliseconds, varied."""
        return random.Random(f"{self.seed}/{mark}/delay").uniform(0.0, 0.03)

    def behaviour(self, mark: str, attempt: int) -> Behaviour:
        fault = self.fault(mark)
        if fault is None or (fault in RETRIED and attempt > 0):
            return Reply(answer_text(mark), chunk=12, delay=self.delay(mark))
        if fault is Fault.RATE_LIMITED_ONCE:
            return Fail(429, "Rate limit reached", retry_after=0.05)
        if fault is Fault.DROPPED_ONCE:
            return Drop()
        if fault is Fault.SERVER_ERROR:
            return Fail(500, "injected server error")
        if fault is Fault.HANG:
            return Hang(self.hang)
        if fault is Fault.NO_FINISH:
            return Reply(f"part {mark} and then", chunk=6, finish=None)
        return BreakStream(f"part {mark} and then")


@dataclass(frozen=True)
class Turn:
    """A message in a prompt the model received: its role and the markers it holds."""

    role: str
    markers: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ModelCall:
    """One reply call: the message asked about, its attempt, the prompt, what it met."""

    asked: tuple[int, int]
    attempt: int
    prompt: tuple[Turn, ...]
    fault: Fault | None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class FaultyModel:
    """Puts `model` in fault-injecting mode (its `default`); records the reply calls."""

    def __init__(self, model: FakeModel, plan: FaultPlan) -> None:
        self.plan = plan
        self.calls: list[ModelCall] = []
        self.attempts: Counter[str] = Counter()
        model.default = self.behaviour

    def behaviour(self, body: dict[str, Any]) -> Behaviour:
        messages = body.get("messages", [])
        asked = parse(_text(messages[-1].get("content"))) if messages else []
        if not asked or messages[-1].get("role") != "user":
            return Reply("fine.")  # not a reply to a marked message (a summary, a probe)
        mark = marker(*asked[-1])
        attempt = self.attempts[mark]
        self.attempts[mark] += 1
        prompt = tuple(
            Turn(str(m.get("role")), tuple(parse(_text(m.get("content"))))) for m in messages
        )
        self.calls.append(ModelCall(asked[-1], attempt, prompt, self.plan.fault(mark)))
        return self.plan.behaviour(mark, attempt)
