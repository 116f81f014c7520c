"""Recall benchmark: evidence recall at a 4,096-token window, and recall latency at 1M messages.

    PYTHONPATH=. python bench/recall_bench.py [--seed 7] [--sessions 60] [--million] \
        [--embeddings]

1. Evidence recall. A seeded `random.Random(seed)` generates a multi-session chat (three people,
   `--sessions` sessions of 50 messages, one day apart) in which facts are planted at random
   points ("the Vantoro launch date is March 14"); the same entities also come up in filler
   messages without the answer (distractors). At the end, one question per fact is asked
   ("When is the Vantoro launch date?"). For each question the real pipeline assembles the
   prompt on a real SQLite file - `Parley.prompts` (PromptBuilder) and the providers that
   `bot.runtime` installs - with PARLEY_CONTEXT_TOKENS=4096, and we check whether the fact's
   message is in it. No model is called: assembling a prompt needs none. Reported for the plain
   window (PARLEY_RECALL=false) and with recall on. Same seed, same data, same figures.
2. Latency (`--million`). A second SQLite file gets one conversation of 1,000,000 generated
   messages (bulk executemany; the FTS triggers index them), then the recall provider is timed
   on 50 questions.
3. `--embeddings`: both again with PARLEY_EMBEDDING_MODEL set, served by the test suite's fake
   model (deterministic 512-dimension bag-of-words vectors over local HTTP). For the latency
   run the newest 20,000 messages get vectors (what the semantic pool reads).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core import Parley
from bot.embedder import IndexAfterReply
from bot.messages import Author, ConversationKey, Inbound
from bot.prompt import Newest, Section
from bot.runtime import open_parley
from bot.settings import Settings
from memory.embeddings import pack
from memory.store import NewMessage
from memory.tokens import render
from memory.transfer import ImportRow, import_rows
from tests.fakes.model_server import FakeModel, bag_of_words

WINDOW = 4096
EMBEDDING_MODEL = "bag-of-words"
EMBEDDED = 20_000  # newest messages given vectors in the latency run
KEY = ConversationKey("bench", "w", "c")
PEOPLE = ("Alice", "Bongani", "Chae-won")
COMMON = [
    "the",
    "we",
    "it",
    "to",
    "is",
    "and",
    "of",
    "for",
    "on",
    "that",
    "this",
    "was",
    "just",
    "so",
    "but",
    "with",
    "about",
    "today",
    "really",
    "think",
    "maybe",
    "going",
    "yeah",
    "lunch",
    "meeting",
    "coffee",
    "weather",
    "weekend",
    "later",
    "again",
    "sounds",
    "good",
    "okay",
    "sure",
    "team",
    "code",
    "review",
    "deploy",
    "bug",
    "ticket",
    "morning",
    "call",
    "notes",
    "plan",
]
# (statement, question): {e} an entity, {v} the answer.
FACTS = (
    ("Decision made: the {e} launch date is {v}.", "When is the {e} launch date?"),
    ("For the record, the {e} server password hint is {v}.", "What was the {e} password hint?"),
    ("The {e} budget was approved at {v} euros.", "How much budget did {e} get approved?"),
    ("Our contact at {e} is called {v}, write that down.", "Who is our contact at {e}?"),
    ("The {e} offsite will be held in {v}.", "Where is the {e} offsite held?"),
)


def word(rng: random.Random, syllables: int) -> str:
    return "".join(
        rng.choice(
            (
                "ka",
                "lo",
                "vi",
                "ren",
                "to",
                "mar",
                "su",
                "del",
                "ni",
                "bo",
                "qua",
                "zen",
                "fi",
                "ro",
                "tal",
            )
        )
        for _ in range(syllables)
    )


@dataclass(frozen=True)
class Question:
    text: str
    answer: str


def generate(seed: int, sessions: int) -> tuple[list[tuple[str, str, datetime]], list[Question]]:
    """(author, content, time) messages and their questions, from `seed` alone."""
    rng = random.Random(seed)
    entities = sorted({word(rng, 3).capitalize() for _ in range(400)})
    topics = [word(rng, 2) for _ in range(300)]
    facts = [
        (
            FACTS[n % len(FACTS)],
            rng.choice(entities),
            f"{word(rng, 2).capitalize()}{rng.randint(10, 99)}",
        )
        for n in range(50)
    ]
    total = sessions * 50
    plants = dict(zip(rng.sample(range(total), len(facts)), facts, strict=True))
    messages: list[tuple[str, str, datetime]] = []
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    for index in range(total):
        when = start + timedelta(days=index // 50, minutes=3 * (index % 50))
        author = rng.choice(PEOPLE)
        if index in plants:
            (statement, _question), entity, answer = plants[index]
            messages.append((author, statement.format(e=entity, v=answer), when))
            continue
        if rng.random() < 0.15:  # a near miss: the question's own words, without the answer
            (_statement, question), entity, _answer = rng.choice(facts)
            messages.append((author, f"No news yet. {question.format(e=entity)}", when))
            continue
        words = [rng.choice(COMMON) for _ in range(rng.randint(8, 22))]
        words += rng.sample(topics, 2)
        if rng.random() < 0.3:  # the entity without the answer
            words.append(rng.choice(entities))
        rng.shuffle(words)
        messages.append((author, " ".join(words).capitalize() + ".", when))
    questions = [
        Question(question.format(e=entity), answer)
        for (_statement, question), entity, answer in facts
    ]
    return messages, questions


def settings(database: Path, recall: bool, embeddings: str | None = None) -> Settings:
    """`embeddings`: the base URL of an embedding endpoint (None: off)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=embeddings or "http://127.0.0.1:9/v1",
        database_url=f"sqlite+aiosqlite:///{database}",
        context_tokens=WINDOW,
        max_reply_tokens=512,
        recall=recall,
        embedding_model=EMBEDDING_MODEL if embeddings else None,
    )


async def assemble(parley: Parley, text: str) -> str:
    """The prompt the core would send for `text` (as one string), built by the real parts."""
    conversation = await parley.store.conversation(KEY)
    author = Author("asker", PEOPLE[0])
    rendered = render("user", author.name, text)
    tokens = parley.counter.count(rendered)
    stored = await parley.store.add(
        conversation.id, NewMessage("user", author.id, author.name, text, tokens)
    )
    assert stored is not None
    system = parley.settings.system_prompt
    system_tokens = parley.counter.count(system)
    budget = parley.prompts.message_budget(system_tokens)
    sections: list[Section] = []
    for provider in parley.providers:
        sections += await provider.sections(conversation, Inbound(KEY, author, text), budget)
    prompt = await parley.prompts.build(
        conversation, (system, system_tokens), Newest(stored, rendered, tokens), tuple(sections)
    )
    assert prompt.tokens <= WINDOW - parley.settings.max_reply_tokens
    return "\n".join(str(m["content"]) for m in prompt.messages)


async def evidence_recall(
    seed: int, sessions: int, directory: Path, embeddings: str | None
) -> dict[str, float]:
    messages, questions = generate(seed, sessions)
    results: dict[str, float] = {}
    runs: list[tuple[str, bool, str | None]] = [
        ("plain window", False, None),
        ("recall on", True, None),
    ]
    if embeddings:
        runs.append(("+ embeddings", True, embeddings))
    for label, recall, endpoint in runs:
        async with open_parley(settings(directory / f"{label}.db", recall, endpoint)) as parley:
            conversation = await parley.store.conversation(KEY)
            await import_rows(
                parley.store.engine,
                [
                    ImportRow(
                        KEY,
                        {
                            "role": "user",
                            "author_id": author,
                            "author_name": author,
                            "content": content,
                            "tokens": parley.counter.count(render("user", author, content)),
                            "created_at": when,
                        },
                    )
                    for author, content, when in messages
                ],
            )
            for listener in parley.listeners:
                if isinstance(listener, IndexAfterReply):
                    for _reply in range(len(messages) // 256 + 2):  # as after that many replies
                        await listener.indexer.index(conversation.id)
            found = sum([q.answer in await assemble(parley, q.text) for q in questions])
            results[label] = found / len(questions)
    print(
        f"evidence recall, {len(messages):,} messages, {len(questions)} questions, "
        f"{WINDOW:,}-token window (seed {seed}):"
    )
    for label, share in results.items():
        print(f"  {label:>12}: {share:6.1%}")
    return results


def _bulk_fill(path: Path, conversation_id: int, count: int, seed: int) -> None:
    """`count` messages in one conversation, inserted by executemany (FTS triggers fire)."""
    rng = random.Random(seed)
    vocabulary = COMMON + [word(rng, rng.randint(2, 3)) for _ in range(20_000)]
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))
    start = datetime(2024, 1, 1)
    connection = sqlite3.connect(path)
    batch = 50_000
    for offset in range(0, count, batch):
        rows = []
        for index in range(offset, min(offset + batch, count)):
            length = rng.randint(6, 30)
            text = " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=length))
            when = (start + timedelta(seconds=30 * index)).strftime("%Y-%m-%d %H:%M:%S.000000")
            rows.append((conversation_id, "user", "u", "U", text, len(text) // 4 + 2, when))
        connection.executemany(
            "INSERT INTO messages (conversation_id, role, author_id, author_name, content, "
            "tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.commit()
    connection.close()


def _embed_newest(path: Path, conversation_id: int, count: int) -> None:
    """Vectors for the newest `count` messages, as the indexer would store them."""
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT id, content FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?",
        (conversation_id, count),
    ).fetchall()
    connection.executemany(
        "INSERT INTO message_vectors (id, conversation_id, model, vector) VALUES (?, ?, ?, ?)",
        [
            (row_id, conversation_id, EMBEDDING_MODEL, pack(bag_of_words(content)))
            for row_id, content in rows
        ],
    )
    connection.commit()
    connection.close()


async def latency(
    seed: int, directory: Path, embeddings: str | None, count: int = 1_000_000
) -> list[float]:
    path = directory / "million.db"
    async with open_parley(settings(path, True)) as parley:
        conversation = await parley.store.conversation(KEY)
    began = time.perf_counter()
    await asyncio.to_thread(_bulk_fill, path, conversation.id, count, seed)
    if embeddings:
        await asyncio.to_thread(_embed_newest, path, conversation.id, EMBEDDED)
    print(f"generated {count:,} messages in {time.perf_counter() - began:.0f} s")
    rng = random.Random(seed + 1)
    async with open_parley(settings(path, True, embeddings)) as parley:
        sample = [m.content for m in await parley.store.window(conversation, count // 2, 4000, 4)]
        queries = [
            " ".join(rng.sample(text.split(), min(4, len(text.split())))) for text in sample[:50]
        ]
        timings = []
        for text in queries:
            began = time.perf_counter()
            budget = parley.prompts.message_budget(0)
            for provider in parley.providers:
                await provider.sections(conversation, Inbound(KEY, Author("u", "U"), text), budget)
            timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    print(
        f"recall latency on one {count:,}-message conversation, {len(timings)} questions"
        f"{' (embeddings on)' if embeddings else ''}: "
        f"median {statistics.median(timings):.1f} ms, p95 "
        f"{timings[int(len(timings) * 0.95) - 1]:.1f} ms, max {timings[-1]:.1f} ms"
    )
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--million", action="store_true", help="also time recall at 1M messages")
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="also with an embedding model (a local deterministic fake)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        async with FakeModel() as model:
            endpoint = model.base_url if args.embeddings else None
            await evidence_recall(args.seed, args.sessions, Path(directory), endpoint)
            if args.million:
                await latency(args.seed, Path(directory), endpoint)


if __name__ == "__main__":
    asyncio.run(main())
