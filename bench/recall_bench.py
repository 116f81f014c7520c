"""Recall benchmark: evidence recall at a 4,096-token window (English and Korean), and recall
latency at 1M messages.

    PYTHONPATH=. python bench/recall_bench.py [--seed 7] [--sessions 40] [--million] \
        [--embeddings [fake|real|both]]

1. Evidence recall. `bench/dialogues.py` builds, from `random.Random(seed)` alone, a group chat
   of four people over `--sessions` dated sessions (about 1,400 turns over five months) with 60
   stories whose evidence turns are known, and one paraphrased question per story (single fact,
   multi-hop, temporal): once in English and once in Korean, the same draws worded in each
   language. For each question the real pipeline assembles the prompt on a real SQLite file -
   `Parley.prompts` (PromptBuilder) and the providers that `bot.runtime` installs - with
   PARLEY_CONTEXT_TOKENS=4096 (512 reserved for the reply); a question counts when every one of
   its evidence turns is in the prompt. No model is called: assembling a prompt needs none.
   Reported for the plain window (PARLEY_RECALL=false) and with recall on, per question type.
2. Latency (`--million`). A SQLite file gets one conversation of 1,000,000 generated messages
   (bulk executemany; the FTS triggers index them), built once per schema revision and kept
   under $TMPDIR/parley-bench/ for later runs; then the recall provider is timed on 50 questions.
   Then the same on PostgreSQL ($PARLEY_BENCH_POSTGRES_URL's server, skipped when unreachable):
   bench/postgres.py's fixture of 1,000,000 messages (`parley_bench_1000000_<schema>`, filled
   by COPY once, a few minutes, and kept).
3. `--embeddings [fake|real|both]`: recall again with PARLEY_EMBEDDING_MODEL set. `fake` (the
   default): the test suite's fake model (deterministic 512-dimension bag-of-words vectors over
   local HTTP), which measures cost, not meaning; `real`: multilingual-e5-small served by
   bench/embedding_server.py (needs the `bench-embeddings` extra). For the latency run the
   newest 20,000 messages get vectors (what the semantic pool reads).
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
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bench import fixtures, postgres
from bench.dialogues import Dialogue, Language, build
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
FAKE_MODEL = "bag-of-words"
EMBEDDED = 20_000  # newest messages given vectors in the latency run
KEY = ConversationKey("bench", "w", "c")
LANGUAGES: tuple[Language, ...] = ("en", "ko")
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
class Embeddings:
    """An embedding endpoint the bench started, and how to embed texts without it (latency)."""

    label: str
    base_url: str
    model: str
    vectors: Callable[[list[str]], list[list[float]]]


def _real_vectors(texts: list[str]) -> list[list[float]]:
    from bench.embedding_server import embed

    return embed(texts)[0]


@asynccontextmanager
async def endpoints(which: str | None) -> AsyncIterator[list[Embeddings]]:
    """The endpoints `--embeddings` asks for (fake, real or both), running while in the block."""
    async with AsyncExitStack() as stack:
        found: list[Embeddings] = []
        if which in ("fake", "both"):
            fake = await stack.enter_async_context(FakeModel())
            found.append(Embeddings("+ fake emb.", fake.base_url, FAKE_MODEL, _fake_vectors))
        if which in ("real", "both"):
            from bench.embedding_server import MODEL, serving

            url = await stack.enter_async_context(serving())
            found.append(Embeddings("+ e5 emb.", url, MODEL, _real_vectors))
        yield found


def _fake_vectors(texts: list[str]) -> list[list[float]]:
    return [bag_of_words(text) for text in texts]


def settings(database: Path | str, recall: bool, embeddings: Embeddings | None = None) -> Settings:
    """`database`: a SQLite file or a database URL; `embeddings`: an embedding endpoint (None:
    off)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=embeddings.base_url if embeddings else "http://127.0.0.1:9/v1",
        database_url=database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}",
        context_tokens=WINDOW,
        max_reply_tokens=512,
        recall=recall,
        embedding_model=embeddings.model if embeddings else None,
    )


async def assemble(parley: Parley, asker: str, text: str) -> str:
    """The prompt the core would send for `text` (as one string), built by the real parts."""
    conversation = await parley.store.conversation(KEY)
    author = Author(f"asker-{asker}", asker)
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


async def _run(
    dialogue: Dialogue, database: Path, recall: bool, embeddings: Embeddings | None
) -> dict[str, float]:
    """Share of questions (per type, and "all") whose every evidence turn is in the prompt."""
    async with open_parley(settings(database, recall, embeddings)) as parley:
        conversation = await parley.store.conversation(KEY)
        await import_rows(
            parley.store.engine,
            [
                ImportRow(
                    KEY,
                    {
                        "role": "user",
                        "author_id": turn.author,
                        "author_name": turn.author,
                        "content": turn.content,
                        "tokens": parley.counter.count(render("user", turn.author, turn.content)),
                        "created_at": turn.when,
                    },
                )
                for turn in dialogue.turns
            ],
        )
        for listener in parley.listeners:
            if isinstance(listener, IndexAfterReply):
                for _reply in range(len(dialogue.turns) // 256 + 2):  # as after that many replies
                    await listener.indexer.index(conversation.id)
        found: dict[str, list[bool]] = {}
        for question in dialogue.questions:
            prompt = await assemble(parley, question.asker, question.text)
            hit = all(evidence in prompt for evidence in question.evidence)
            found.setdefault(question.kind, []).append(hit)
            found.setdefault("all", []).append(hit)
    return {kind: sum(hits) / len(hits) for kind, hits in found.items()}


async def evidence_recall(
    seed: int, sessions: int, directory: Path, embeddings: list[Embeddings]
) -> dict[tuple[str, str], dict[str, float]]:
    """{(language, run): {question type: evidence recall}}, printed as a table."""
    runs: list[tuple[str, bool, Embeddings | None]] = [
        ("plain window", False, None),
        ("recall", True, None),
    ]
    runs += [(endpoint.label, True, endpoint) for endpoint in embeddings]
    results: dict[tuple[str, str], dict[str, float]] = {}
    seconds: dict[tuple[str, str], float] = {}
    for language in LANGUAGES:
        dialogue = build(seed, language, sessions)
        for label, recall, endpoint in runs:
            database = directory / f"{language}-{label}.db"
            began = time.perf_counter()
            results[language, label] = await _run(dialogue, database, recall, endpoint)
            seconds[language, label] = time.perf_counter() - began
    kinds = ("all", "single", "multi-hop", "temporal")
    print(
        f"evidence recall, {len(dialogue.turns):,} turns, {len(dialogue.questions)} questions, "
        f"{WINDOW:,}-token window (seed {seed}):"
    )
    print(
        f"  {'':>16}" + "".join(f"{kind:>11}" for kind in kinds) + "  seconds (import, index, ask)"
    )
    for (name, label), shares in results.items():
        row = "".join(f"{shares.get(kind, 0.0):>11.1%}" for kind in kinds)
        print(f"  {name} {label:>13}{row}{seconds[name, label]:>9.0f}")
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


def _embed_newest(path: Path, conversation_id: int, count: int, embeddings: Embeddings) -> None:
    """Vectors for the newest `count` messages, as the indexer would store them (replacing
    another model's)."""
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT id, content FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?",
        (conversation_id, count),
    ).fetchall()
    vectors = embeddings.vectors([content for _id, content in rows])
    connection.execute("DELETE FROM message_vectors WHERE conversation_id = ?", (conversation_id,))
    connection.executemany(
        "INSERT INTO message_vectors (id, conversation_id, model, vector) VALUES (?, ?, ?, ?)",
        [
            (row_id, conversation_id, embeddings.model, pack(vector))
            for (row_id, _content), vector in zip(rows, vectors, strict=True)
        ],
    )
    connection.commit()
    connection.close()


async def latency(seed: int, embeddings: Embeddings | None, count: int = 1_000_000) -> list[float]:
    # Built once per seed, size and schema (as under it: a migration may change how the index
    # is kept), then reused (the markers say which steps completed).
    directory = Path(tempfile.gettempdir()) / "parley-bench"
    directory.mkdir(exist_ok=True)
    path = directory / f"million-{seed}-{count}-{fixtures.SCHEMA}.db"
    filled = path.with_suffix(".filled")
    embedded = path.with_suffix(f".embedded-{embeddings.model}" if embeddings else ".embedded")
    if not filled.exists():
        path.unlink(missing_ok=True)
        for marker in directory.glob(f"{path.stem}.embedded*"):
            marker.unlink()
    async with open_parley(settings(path, True)) as parley:
        conversation = await parley.store.conversation(KEY)
    began = time.perf_counter()
    if not filled.exists():
        await asyncio.to_thread(_bulk_fill, path, conversation.id, count, seed)
        filled.touch()
        print(f"generated {count:,} messages in {time.perf_counter() - began:.0f} s ({path})")
    if embeddings and not embedded.exists():
        for marker in directory.glob(f"{path.stem}.embedded*"):
            marker.unlink()  # one model's vectors at a time
        await asyncio.to_thread(_embed_newest, path, conversation.id, EMBEDDED, embeddings)
        embedded.touch()
    async with open_parley(settings(path, True, embeddings)) as parley:
        return await _timed(
            parley,
            seed,
            count,
            f" (embeddings: {embeddings.model})" if embeddings else "",
        )


async def postgres_latency(seed: int, count: int = 1_000_000) -> list[float] | None:
    """The same timing on PostgreSQL: bench/postgres.py's fixture of `count` messages (built
    once by COPY, a few minutes); skipped when the server is unreachable."""
    if not await postgres.available():
        print(f"recall latency on PostgreSQL: skipped (no server at {postgres.ADMIN_URL})")
        return None
    url = await postgres.fixture(count)
    await fixtures.reset(url, count)
    async with open_parley(settings(url, True)) as parley:
        return await _timed(parley, seed, count, " on PostgreSQL")


async def _timed(parley: Parley, seed: int, count: int, label: str) -> list[float]:
    """The summary and recall providers timed on 50 questions made of words of the middle of
    the conversation."""
    rng = random.Random(seed + 1)
    conversation = await parley.store.conversation(KEY)
    sample = [m.content for m in await parley.store.window(conversation, count // 2, 4000, 4)]
    queries = [
        " ".join(rng.sample(text.split(), min(4, len(text.split())))) for text in sample[:50]
    ]
    timings, cpu = [], []
    for text in queries:
        began, began_cpu = time.perf_counter(), time.process_time()
        budget = parley.prompts.message_budget(0)
        for provider in parley.providers:
            await provider.sections(conversation, Inbound(KEY, Author("u", "U"), text), budget)
        timings.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    timings.sort()
    # CPU: the process's, the database driver's thread included (on a shared machine, wall
    # time also counts waiting for a core).
    print(
        f"recall latency on one {count:,}-message conversation{label}, {len(timings)} "
        f"questions: median {statistics.median(timings):.1f} ms, p95 "
        f"{timings[int(len(timings) * 0.95) - 1]:.1f} ms, max {timings[-1]:.1f} ms "
        f"(CPU: median {statistics.median(cpu):.2f} ms)"
    )
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--million", action="store_true", help="also time recall at 1M messages")
    parser.add_argument(
        "--embeddings",
        nargs="?",
        const="fake",
        choices=("fake", "real", "both"),
        help="also with an embedding model: fake (the default: the tests' deterministic "
        "bag-of-words), real (multilingual-e5-small; the bench-embeddings extra) or both",
    )
    args = parser.parse_args()
    if args.embeddings in ("real", "both"):
        from bench.embedding_server import MISSING, installed

        if not installed():
            parser.error(MISSING)
    with tempfile.TemporaryDirectory() as directory:
        async with endpoints(args.embeddings) as embeddings:
            await evidence_recall(args.seed, args.sessions, Path(directory), embeddings)
            if args.million:
                timed: list[Embeddings | None] = [*embeddings] or [None]
                for endpoint in timed:
                    await latency(args.seed, endpoint)
                await postgres_latency(args.seed)


if __name__ == "__main__":
    asyncio.run(main())
