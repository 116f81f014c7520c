"""What recall puts in the prompt: the turns that complete an excerpt, the period a
time-relative question asks about, dates and speakers, and nothing the window already holds.
Real SQLite file and PostgreSQL, the real openai client against the fake model server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.core import Parley
from bot.messages import Author
from bot.texts import EN
from memory.keys import ConversationKey
from memory.tokens import render
from memory.transfer import ImportRow, import_rows
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.helpers import GENERAL, ask, parley_on, reply_prompt

START = datetime(2026, 3, 2, 19, tzinfo=UTC)
CHATTER = (
    "Anyone up for ramen tonight?",
    "Running late, the tram is stuck again.",
    "Finished Severance last night, that ending though.",
    "It's so rainy out today.",
)


async def _history(
    parley: Parley, key: ConversationKey, turns: list[tuple[str, str, datetime]]
) -> None:
    await import_rows(
        parley.store.engine,
        [
            ImportRow(
                key,
                {
                    "role": "user",
                    "author_id": author,
                    "author_name": author,
                    "content": content,
                    "tokens": parley.counter.count(render("user", author, content)),
                    "created_at": when,
                },
            )
            for author, content, when in turns
        ],
    )


def _days(story: dict[int, list[tuple[str, str]]], days: int) -> list[tuple[str, str, datetime]]:
    """`days` days of chatter (60 turns a day), with the story's turns on their days."""
    turns: list[tuple[str, str, datetime]] = []
    for day in range(days):
        lines = [("Carol" if n % 2 else "Dan", CHATTER[n % len(CHATTER)]) for n in range(60)]
        lines[20:20] = story.get(day, [])
        turns += [
            (a, c, START + timedelta(days=day, minutes=2 * n)) for n, (a, c) in enumerate(lines)
        ]
    return turns


async def test_an_answer_comes_with_the_question_it_answers(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    story = {
        2: [
            ("Carol", "Did you ever find a venue for the team offsite, Bob?"),
            ("Bob", "Yes! Casa Verde."),
        ]
    }
    async with parley_on(make_settings, database_url) as parley:
        await _history(parley, GENERAL, _days(story, 8))
        question = "Which venue did Bob pick for the offsite?"
        await ask(parley, question, key=GENERAL)
        prompt = reply_prompt(fake_model, question)
    assert "Casa Verde" in prompt  # the answer has none of the question's words
    assert re.search(r"\[2026-03-04 \d\d:\d\d UTC, Bob\] Yes! Casa Verde\.", prompt)


async def test_a_time_relative_question_gets_what_was_said_in_that_period(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    story = {
        1: [("Bob", "Back from Lisbon! The trip was amazing.")],
        3: [("Bob", "Spent the whole time repainting the balcony.")],
    }
    async with parley_on(make_settings, database_url) as parley:
        await _history(parley, GENERAL, _days(story, 8))
        question = "What did Bob do in the days after the Lisbon trip?"
        await ask(parley, question, key=GENERAL)
        assert "repainting the balcony" in reply_prompt(fake_model, question)


async def test_excerpts_never_repeat_the_window(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    # Short enough that most of the history fits: whatever recall quotes must stay out of the
    # window, and the window must not reach back into what recall quotes.
    turns = [
        (a, f"{c} Mentioning the brass key, number {n}.", w)
        for n, (a, c, w) in enumerate(_days({}, 2)[:100])
    ]
    async with parley_on(make_settings, database_url, context_tokens=2048) as parley:
        await _history(parley, GENERAL, turns)
        question = "Where is the brass key?"
        await ask(parley, question, author=Author("u-x", "Xena"), key=GENERAL)
        prompt = reply_prompt(fake_model, question)
    assert EN["recall.header"][:30] in prompt  # recall did quote older turns
    quoted = re.findall(r"number \d+\.", prompt)
    assert len(quoted) == len(set(quoted))
