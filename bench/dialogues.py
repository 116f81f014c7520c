"""Long multi-session group chats with questions whose evidence sits in known old turns.

Everything follows from `random.Random(seed)`: the same seed gives the same chat, in English
and in Korean alike (`build(seed, "en")` and `build(seed, "ko")` draw the same choices in the same
order; only the wording tables differ, so the two sets are translations of each other).

Four people talk over `sessions` dated sessions (gaps of 1-6 days, 26-40 turns each) in
varied small talk drawn from template tables with slots, and in stories that run across
sessions. Each story plants evidence turns and gives one question, phrased differently from the
evidence (other verbs, other word forms), asked at the end:

- single: one fact, often as the answer to a friend's question in the previous turn;
- multi-hop: two facts in different sessions, linked by a person, both needed;
- temporal: what someone did in the days after an earlier event ("the weekend after the trip").

Distractors: every story's topic words also come up in other sessions without the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bench.dialogue_texts import TEXTS, josa

Language = Literal["en", "ko"]
Kind = Literal["single", "multi-hop", "temporal"]


@dataclass(frozen=True)
class Turn:
    author: str
    content: str
    when: datetime


@dataclass(frozen=True)
class Question:
    kind: Kind
    asker: str
    text: str
    evidence: tuple[str, ...]  # the contents of the turns that answer it


@dataclass(frozen=True)
class Dialogue:
    turns: list[Turn]
    questions: list[Question]


class _Writer:
    """Fills one language's templates; `pick` draws from the shared random stream."""

    def __init__(self, rng: random.Random, language: Language) -> None:
        self.rng = rng
        self.t = TEXTS[language]

    def pick(self, table: str) -> str:
        return str(self.rng.choice(self.t[table]))

    def fill(self, template: str, **slots: str) -> str:
        return josa(template.format(**slots))


# (kind, [(session, author, content)], asker, question)
Story = tuple[Kind, list[tuple[int, str, str]], str, str]


def _stories(writer: _Writer, people: list[str], sessions: int, count: int) -> list[Story]:
    """(kind, [(session, author, content)] evidence-and-lead turns, asker, question) per story;
    the evidence turns are the ones whose content is marked with a leading '!'."""
    rng = writer.rng
    stories: list[Story] = []
    # Each story happens once to each person: (table, template, person) never repeats.
    unused = {
        table: rng.sample(
            [(entry, person) for entry in writer.t[table] for person in people],
            len(writer.t[table]) * len(people),
        )
        for table in ("single", "multi", "temporal")
    }
    for number in range(count):
        kind: Kind = ("single", "single", "multi-hop", "temporal")[number % 4]
        table = {"single": "single", "multi-hop": "multi", "temporal": "temporal"}[kind]
        entry, person = unused[table].pop()
        friend, asker = rng.sample([p for p in people if p != person], 2)
        first = rng.randrange(1, sessions - 4)
        if kind == "single":
            lead, fact, question, values = entry
            value = rng.choice(values)
            turns = [
                (first, friend, writer.fill(lead, p=person, v=value)),
                (first, person, "!" + writer.fill(fact, p=person, v=value)),
            ]
            stories.append((kind, turns, asker, writer.fill(question, p=person)))
        elif kind == "multi-hop":
            one, two, question = entry
            relative, company = writer.pick("relatives"), writer.pick("companies")
            city = writer.pick("cities")
            slots = {"p": person, "r": relative, "c": company, "city": city}
            later = rng.randrange(first + 2, sessions)
            turns = [
                (first, person, "!" + writer.fill(one, **slots)),
                (later, person, "!" + writer.fill(two, **slots)),
            ]
            stories.append((kind, turns, asker, writer.fill(question, **slots)))
        else:
            anchor, after, question = entry
            city, activity = writer.pick("cities"), writer.pick("activities")
            slots = {"p": person, "city": city, "a": activity}
            turns = [
                (first, person, writer.fill(anchor, **slots)),
                (first + 1, person, "!" + writer.fill(after, **slots)),
            ]
            stories.append((kind, turns, asker, writer.fill(question, **slots)))
    return stories


def _filler(writer: _Writer, people: list[str], topics: list[str]) -> tuple[str, str]:
    author, other = writer.rng.sample(people, 2)
    if writer.rng.random() < 0.12:  # a story's words, without its answer
        text = writer.fill(writer.pick("distractors"), x=writer.rng.choice(topics), p=other)
        return author, text
    slots = {key: writer.pick(key) for key in ("foods", "shows", "chores", "weather", "places")}
    return author, writer.fill(writer.pick("filler"), p=other, **slots)


def build(seed: int, language: Language, sessions: int = 40, stories: int = 60) -> Dialogue:
    """The chat and its questions for `seed` (see the module docstring)."""
    rng = random.Random(seed)
    writer = _Writer(rng, language)
    people = list(writer.t["people"])
    planned = _stories(writer, people, sessions, stories)
    # A story's turns of one session form a block (a friend's question, then the answer).
    by_session: dict[int, list[list[tuple[str, str]]]] = {}
    for _kind, turns, _asker, _question in planned:
        blocks: dict[int, list[tuple[str, str]]] = {}
        for session, author, content in turns:
            blocks.setdefault(session, []).append((author, content))
        for session, block in blocks.items():
            by_session.setdefault(session, []).append(block)
    topics = [str(word) for word in writer.t["topic_words"]]
    result: list[Turn] = []
    day = datetime(2026, 3, 2, 19, tzinfo=UTC)
    for session in range(sessions):
        day += timedelta(days=rng.randint(1, 6), minutes=rng.randint(-120, 120))
        chat = [[_filler(writer, people, topics)] for _ in range(rng.randint(26, 40))]
        for block in by_session.get(session, []):
            chat.insert(rng.randint(0, len(chat)), block)
        result += [
            Turn(author, content.lstrip("!"), day + timedelta(minutes=2 * index))
            for index, (author, content) in enumerate(turn for block in chat for turn in block)
        ]
    questions = [
        Question(
            kind,
            asker,
            question,
            tuple(content[1:] for _s, _a, content in turns if content.startswith("!")),
        )
        for kind, turns, asker, question in planned
    ]
    return Dialogue(result, questions)
