"""Moving history in: JSON Lines as `memory.export` writes them.

One JSON object per line: {"conversation": "terminal/local/default", "author": "Ann",
"author_id": "ann", "role": "user", "content": "…", "time": "2026-11-22T10:00:00+00:00"};
`author_id` is optional on import (it defaults to the author's name).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memory.analysis import terms_off_loop
from memory.bulk_index import BulkWriter, bulk_writing
from memory.keys import ConversationKey
from memory.problems import Problem
from memory.store import conversation_at
from memory.tables import Conversation, Message
from memory.tokens import TokenCounter, render

_ROLES = ("user", "assistant")
_FIELDS = ("author", "role", "content", "time")
# Lines read, checked and inserted at a time: each batch costs a dozen trips to the database's
# thread, each waiting for the GIL from the thread reading the next (1M messages: 5,000 lines
# 10.7-11.8 s, 20,000 9.9-10.3 s; ~30 MB more held).
_IMPORT_BATCH = 20_000
# ...and at most this many characters of them, so long messages (pasted documents) do not grow a
# batch past the import's bounded memory (40,000 lines of 9 KB: 961 MB at its peak by lines
# alone, 356 MB in batches of 5,000 lines, 182-216 MB so).
_IMPORT_CHARS = 8_000_000
_READ_LINES = 1000
_SWITCH_INTERVAL = 0.0005  # seconds (see `_tuned_for_import`)


class InvalidImport(Problem):
    """Line `line` of an import cannot be stored; `reason` says why."""

    def __init__(self, line: int, reason: str, **values: object) -> None:
        super().__init__(reason, **values)
        self.line = line


def parse_key(text: str) -> ConversationKey:
    """`platform/workspace/channel[/thread]`, as `str(ConversationKey)` writes it."""
    parts = text.split("/")
    if len(parts) not in (3, 4) or not all(parts):
        raise ValueError(text)
    return ConversationKey(*parts)


# Widens the time range searched for already-stored rows (storage rounding).
_SLACK = timedelta(seconds=1)


class ImportRow(NamedTuple):
    """`values`: role, author_id, author_name, content, tokens, created_at (aware). A tuple: a
    frozen dataclass took a third of a line's parsing time to build."""

    key: ConversationKey
    values: dict[str, Any]


class _Line(msgspec.Struct, gc=False):
    """A line as `export` writes it, decoded and type-checked in one C call."""

    author: str
    role: str
    content: str
    # Text, read by `fromisoformat` as `_checked` reads it (msgspec's datetime rounds a
    # seventh fractional digit where it truncates: a re-import would store the line again).
    time: str
    conversation: str | None = None
    author_id: str | None = None


_decode_line = msgspec.json.Decoder(_Line).decode


def _parse(number: int, raw: str, target: ConversationKey | None) -> ImportRow:
    """The line's row. Lines as `export` writes them are decoded by msgspec (~0.5 µs against
    ~4 µs through `json` and the checks in Python); any other line takes `_checked`'s way,
    which accepts what it always did and names what is wrong."""
    try:
        line = _decode_line(raw)
        key = target or _conversation_key(line.conversation or "")
        time = datetime.fromisoformat(line.time)
    except ValueError:  # msgspec.DecodeError is one
        return _checked(number, raw, target)
    if line.role not in _ROLES:
        return _checked(number, raw, target)
    author_id = line.author if line.author_id is None else line.author_id
    return _row(key, line.role, author_id, line.author, line.content, time)


def _checked(number: int, raw: str, target: ConversationKey | None) -> ImportRow:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidImport(number, "import.not_json", error=exc.msg) from exc
    if not isinstance(record, dict):
        raise InvalidImport(number, "import.not_object")
    get = record.get
    author, role, content, when = get("author"), get("role"), get("content"), get("time")
    if not (
        isinstance(author, str)
        and isinstance(role, str)
        and isinstance(content, str)
        and isinstance(when, str)
        and (target or isinstance(get("conversation"), str))
    ):
        fields = (*_FIELDS, *(() if target else ("conversation",)))
        field = next(field for field in fields if not isinstance(get(field), str))
        raise InvalidImport(number, "import.field", field=field)
    if role not in _ROLES:
        raise InvalidImport(number, "import.role", role=role)
    try:
        key = target or _conversation_key(record["conversation"])
    except ValueError as exc:
        raise InvalidImport(number, "import.conversation") from exc
    try:
        time = datetime.fromisoformat(when)
    except ValueError as exc:
        raise InvalidImport(number, "import.time", time=when) from exc
    author_id = get("author_id")
    author_id = author_id if isinstance(author_id, str) else author
    return _row(key, role, author_id, author, content, time)


def _row(
    key: ConversationKey, role: str, author_id: str, author: str, content: str, time: datetime
) -> ImportRow:
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    elif time.tzinfo is not UTC:
        time = time.astimezone(UTC)
    return ImportRow(
        key,
        {
            "role": role,
            "author_id": author_id,
            "author_name": author,
            "content": content,
            "created_at": time,
        },
    )


@lru_cache(maxsize=256)
def _conversation_key(text: str) -> ConversationKey:
    """`parse_key`, once per conversation of a file rather than once per line."""
    return parse_key(text)


def parse_import(
    lines: Sequence[str], target: ConversationKey | None, counter: TokenCounter, first: int = 1
) -> list[ImportRow]:
    """Validate every line (numbered from `first`) and count its tokens (CPU-bound: call it in
    a worker thread)."""
    rows = [
        _parse(number, raw, target) for number, raw in enumerate(lines, start=first) if raw.strip()
    ]
    counts = counter.count_many(
        [render(v["role"], v["author_name"], v["content"]) for v in (row.values for row in rows)]
    )
    for row, tokens in zip(rows, counts, strict=True):
        row.values["tokens"] = tokens
    return rows


@dataclass(frozen=True)
class Imported:
    stored: int
    skipped: int  # already in the database (an earlier import, or the export's own source)


# What makes a message the same one again within its conversation: role, author, time (aware,
# UTC) and text.
Identity = tuple[str, str, datetime, str]


# Picked at C speed: a row's identity; its values in `COLUMNS` order between the
# conversation's id and the index terms.
_identity = itemgetter("role", "author_id", "created_at", "content")
_PICKS = tuple(
    map(itemgetter, ("role", "author_id", "author_name", "content", "tokens", "created_at"))
)
_content = itemgetter("content")
_key_of = itemgetter(0)
_values_of = itemgetter(1)


async def _stored_identities(
    connection: AsyncConnection, conversation_id: int, rows: Sequence[dict[str, Any]]
) -> set[Identity]:
    times = [values["created_at"] for values in rows]
    found = await connection.execute(
        select(Message.role, Message.author_id, Message.created_at, Message.content).where(
            # `+ 0`: found through the time index. Through the conversation's (SQLite's choice,
            # without statistics) every batch read all of the conversation's stored rows: an
            # import of 1M messages into one conversation grew quadratically.
            Message.conversation_id + 0 == conversation_id,
            Message.created_at >= min(times) - _SLACK,
            Message.created_at <= max(times) + _SLACK,
        )
    )
    # SQLite gives times back without a zone (all are UTC): the few stored rows are made aware,
    # rather than every row of the file naive.
    return {
        (role, author, at if at.tzinfo else at.replace(tzinfo=UTC), content)
        for role, author, at, content in found
    }


async def import_rows(engine: AsyncEngine, rows: Sequence[ImportRow]) -> Imported:
    """Store parsed rows in one transaction: all of them or none; rows already stored are
    skipped (see `_store_rows`)."""
    async with engine.begin() as connection, bulk_writing(connection) as writer:
        stored = await _store_rows(connection, writer, rows, {})
    return Imported(stored, len(rows) - stored)


@dataclass(frozen=True)
class _Batch:
    rows: list[ImportRow]
    lines: int  # read, blank ones included: the next batch's first line number follows them


def _read_batch(
    source: TextIO, target: ConversationKey | None, counter: TokenCounter, first: int
) -> _Batch:
    lines: list[str] = []
    chars = 0
    while len(lines) < _IMPORT_BATCH and chars < _IMPORT_CHARS:
        # A thousand lines at a time: counted at C speed, past the limit by at most as many.
        more = list(itertools.islice(source, min(_READ_LINES, _IMPORT_BATCH - len(lines))))
        if not more:
            break
        lines += more
        chars += sum(map(len, more))
    return _Batch(parse_import(lines, target, counter, first), len(lines))


@contextmanager
def _tuned_for_import() -> Iterator[None]:
    """The interpreter tuned for an import, and put back after:
    - the cycle collector off: an import's rows make no cycles, and its passes over the batches
      in flight (promoted as they outlive a few thousand allocations) took 10-15% of its CPU;
    - threads switching every 0.5 ms rather than 5: the thread running the SQLite inserts
      (which let go of the GIL while SQLite works) otherwise waited up to 5 ms for it back from
      the thread parsing and counting the next batch, after each statement (1M messages:
      25.4-27.8 -> 24.2-24.7 s, alternating runs)."""
    enabled, interval = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if enabled:
            gc.enable()


async def import_file(
    engine: AsyncEngine, path: Path, target: ConversationKey | None, counter: TokenCounter
) -> Imported:
    """Stream a JSON Lines file into the store: read, checked and stored one batch at a time
    (memory stays bounded by two batches: the next one is read and counted in a worker thread
    while this one is stored), in one transaction, so a bad line stores nothing; on SQLite
    indexed for search a batch at a time (memory/bulk_index.py).
    Raises InvalidImport, or OSError when the file cannot be read."""
    source = await asyncio.to_thread(path.open, encoding="utf-8-sig", errors="replace")
    ids: dict[ConversationKey, int] = {}
    stored, read = 0, 0
    reading = asyncio.ensure_future(asyncio.to_thread(_read_batch, source, target, counter, 1))
    try:
        with _tuned_for_import():
            async with engine.begin() as connection, bulk_writing(connection) as writer:
                first = 1
                while (batch := await reading).lines:
                    first += batch.lines
                    reading = asyncio.ensure_future(
                        asyncio.to_thread(_read_batch, source, target, counter, first)
                    )
                    stored += await _store_rows(connection, writer, batch.rows, ids)
                    read += len(batch.rows)
    finally:
        # The thread reading ahead must be done with the file before it is closed.
        await asyncio.gather(reading, return_exceptions=True)
        await asyncio.to_thread(source.close)
    return Imported(stored, read - stored)


async def _store_rows(
    connection: AsyncConnection,
    writer: BulkWriter,
    rows: Sequence[ImportRow],
    ids: dict[ConversationKey, int],
) -> int:
    """Store the rows not stored already (same conversation, role, author, time and text), so
    importing a file twice, or an export into the database it came from, duplicates nothing.
    Returns how many were stored."""
    new: list[tuple[Any, ...]] = []
    for key, group in _by_conversation(rows).items():
        if key not in ids:
            ids[key] = await _conversation_id(connection, key)
        fresh = _unseen(group, await _stored_identities(connection, ids[key], group))
        terms = await terms_off_loop(list(map(str, map(_content, fresh))))
        # Rows in `COLUMNS` order, put together at C speed.
        new += zip(itertools.repeat(ids[key]), *(map(pick, fresh) for pick in _PICKS), terms)
    if new:
        await writer.insert(new)
    return len(new)


def _by_conversation(rows: Sequence[ImportRow]) -> dict[ConversationKey, list[dict[str, Any]]]:
    keys = list(map(_key_of, rows))
    # A file's lines share one key object per conversation (`_conversation_key`): a batch of
    # one conversation is found without hashing each key.
    if keys and keys.count(keys[0]) == len(keys):
        return {keys[0]: list(map(_values_of, rows))}
    grouped: dict[ConversationKey, list[dict[str, Any]]] = {}
    for key, values in rows:
        grouped.setdefault(key, []).append(values)
    return grouped


def _unseen(group: list[dict[str, Any]], seen: set[Identity]) -> list[dict[str, Any]]:
    """The rows of `group` whose identity is not in `seen`, each once."""
    if not seen and len(set(map(_content, group))) == len(group):
        # Nothing stored at these times and no text twice, checked at C speed (hashing the
        # texts: hashing whole identities spends ~1 µs a row on their zoned times).
        return group
    fresh = []
    for values, identity in zip(group, map(_identity, group), strict=True):
        if identity not in seen:
            seen.add(identity)
            fresh.append(values)
    return fresh


async def _conversation_id(connection: AsyncConnection, key: ConversationKey) -> int:
    found = await connection.scalar(select(Conversation.id).where(conversation_at(key)))
    if found is not None:
        return found
    created = await connection.execute(
        insert(Conversation)
        .values(
            platform=key.platform,
            workspace=key.workspace,
            channel=key.channel,
            thread=key.thread,
            reset_after=0,
        )
        .returning(Conversation.id)
    )
    return created.scalar_one()
