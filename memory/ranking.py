"""The SQL that ranks full-text matches, as common table expressions ending in
`ranked(id, score)`: the best `:limit` rows of a table matching any search word, with
`:after < id < {before}`, highest score first (newest first among equals).

Every word reads only its newest PER_TERM matches (FTS5, and on PostgreSQL the messages' word
table, read a word's matches newest first and stop early; passages: GIN or a backward index
scan), so the work does not grow with the history; the candidates are ranked in the same
statement, which callers extend (recall adds the window start and the adjacent turns), so a
search costs one round trip however many words it has.

A row scores the summed rarity (IDF) of the words it contains; a common word's frequency is
extrapolated from how far back its newest matches reach. (PostgreSQL's `ts_rank` read every
candidate's tsvector: 15 ms for 600 candidates.)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    Boolean,
    Float,
    Integer,
    TextualSelect,
    bindparam,
    column,
    text,
)

from memory.analysis import has_cjk, lone_han_kana
from memory.tables import Document, Message, Passage

Table = Literal["messages", "document_passages"]
FTS_TABLES: dict[Table, str] = {"messages": "messages_fts", "document_passages": "passages_fts"}
# Matches read per word.
PER_TERM = 200


def prefix(term: str) -> bool:
    # Other non-Latin scripts keep matching on a word's start, as before analysis existed.
    return (not term.isascii() and not has_cjk(term)) or lone_han_kana(term)


def fts5_query(terms: Sequence[str], conversation_ids: Sequence[int] = ()) -> str:
    """An FTS5 MATCH expression: any of `terms`, only in the given conversations (none given:
    in any)."""
    words = " OR ".join(f'"{t}"*' if prefix(t) else f'"{t}"' for t in terms)
    if not conversation_ids:
        return f"- {{conversation_id}} : ({words})"
    conversations = " OR ".join(f'"{int(c)}"' for c in conversation_ids)
    return f"{{conversation_id}} : ({conversations}) AND - {{conversation_id}} : ({words})"


def tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery('english', …) expression: any of `terms`."""
    return " | ".join(f"'{t}':*" if prefix(t) else f"'{t}'" for t in terms)


def ranked_sql(
    sqlite: bool,
    table: Table,
    conversation_ids: Sequence[int],
    terms: Sequence[str],
    before: str = ":before",
    dense: bool = False,
) -> tuple[str, dict[str, Any]]:
    """CTEs (without `WITH`) ending in `ranked(id, score)`, and their parameters besides
    `:after`, `:limit` and whatever `before` (an SQL expression) names.

    `dense` (SQLite, one conversation): the conversation holds most rows of the range searched.
    FTS5 intersects a word with the conversation's token by walking the conversation's whole
    list (~1 ms a word at a million messages); in a dense conversation it is cheaper to read
    the word's newest matches from the whole index, rank them all, and keep the conversation's
    in rank order until there are `:limit` (one indexed seek each for the few read, not for
    every match). Word frequencies are then those of the whole range. Only the best `:checked`
    matches are checked (-1, the value given here: all); see `checked_too_few`.
    """
    values: dict[str, Any] = {"per_term": PER_TERM}
    if dense and sqlite:
        values.update(own=conversation_ids[0], checked=-1)
    elif not sqlite:
        values["conversations"] = list(conversation_ids)
    if not sqlite and table == "messages":  # every word in one scan (`_WORDS_ARM`)
        # Tuples: passed whole, as arrays (lists expand, see `statement`).
        values.update(words=tuple(terms), prefixed=tuple(prefix(term) for term in terms))
        return _ranked_text(sqlite, table, None, before, dense), values
    for n, term in enumerate(terms):
        if sqlite:
            values[f"q{n}"] = fts5_query([term], () if dense else conversation_ids)
        else:
            values[f"q{n}"] = tsquery([term])
    return _ranked_text(sqlite, table, len(terms), before, dense), values


@lru_cache(maxsize=256)
def _ranked_text(sqlite: bool, table: Table, terms: int | None, before: str, dense: bool) -> str:
    """The SQL of `ranked_sql`: an arm per word (it depends on the number of words, not on the
    words), or with `terms` None (PostgreSQL's word table) one scan for them all."""
    if sqlite and terms is not None:
        matched, scores = _sqlite_scores(table, terms, before)
    else:
        arms = (
            [_words_scan(before)]
            if terms is None
            else [_tsvector_arm(table, n, before) for n in range(terms)]
        )
        matched = (
            f"scanned AS ({' UNION ALL '.join(arms)}), "
            "stats AS (SELECT term, count(*) AS n, max(id) AS newest, min(id) AS oldest "
            "FROM scanned GROUP BY term), "
        )
        scores = (
            "SELECT id, sum(weight) AS score FROM scanned JOIN weights USING (term) "
            "GROUP BY id ORDER BY score DESC, id DESC"
        )
    ranked = (
        # Checked one by one in rank order (~1.5 ms less than checking every match at 1,000
        # matches): the subquery's LIMIT keeps it ordered and apart (SQLite neither drops the
        # ORDER BY of a subquery with a LIMIT nor moves the outer WHERE into it), so the outer
        # LIMIT takes the best rows that pass. A bound (`:checked` >= 0) lets SQLite keep only
        # that many best rows instead of sorting every match (~0.1 ms at 600 matches).
        f"ranked AS (SELECT id, score FROM ({scores} LIMIT :checked) AS g WHERE EXISTS (SELECT 1 "
        f"FROM {table} AS own WHERE own.conversation_id = :own AND own.id = g.id) LIMIT :limit)"
        if dense and sqlite
        else f"ranked AS ({scores} LIMIT :limit)"
    )
    least, greatest = ("min", "max") if sqlite else ("least", "greatest")
    return (
        # `stats`: each word's matches read, the newest and the oldest.
        f"{matched}"
        # A word's frequency: counted when all its matches were read, else extrapolated from
        # how far back its newest matches reach.
        "span AS (SELECT max(newest) - :after + 1 AS searched FROM stats), "
        # In floating point: PostgreSQL's numeric arithmetic is exact and slow.
        "weights AS (SELECT term, ln(1 + CAST(searched AS DOUBLE PRECISION) / (CASE WHEN "
        f"n < :per_term THEN n ELSE {least}(searched, n * CAST(newest - :after AS DOUBLE "
        f"PRECISION) / {greatest}(newest - oldest, 1)) END)) AS weight FROM stats, span), "
        f"{ranked}"
    )


def _sqlite_scores(table: Table, terms: int, before: str) -> tuple[str, str]:
    """SQLite's CTEs from the words' matches to `stats`, and the scores' SELECT (after
    `weights`). Each word's matches are a table of their own, so its count and span are one
    scan of it rather than a sort of all the words' matches by word: recall's statement at 1M
    messages (every word at its 200 newest matches) 15.0M -> 14.3M instructions, 19.6M ->
    17.1M on an index holding many deletions; unchanged at 1k (callgrind, bench/README.md).
    SQLite's CROSS JOIN keeps this order: each match looks its word's weight up, rather than
    each weight searching the matches through an index built for it. (A column of weights per
    word, each word's matches taking theirs, ran in 13.4M; but SQLite copies a CTE into each
    place that names it when preparing, and the weights named once per word made preparing a
    16-word statement take 135 ms, not 6.)"""
    fts = FTS_TABLES[table]
    arms = "".join(f"m{n} AS ({_fts5_arm(fts, n, before)}), " for n in range(terms))
    stats = " UNION ALL ".join(
        f"SELECT {n} AS term, count(*) AS n, max(id) AS newest, min(id) AS oldest FROM m{n}"
        for n in range(terms)
    )
    matches = " UNION ALL ".join(f"SELECT term, id FROM m{n}" for n in range(terms))
    return (
        f"{arms}stats AS ({stats}), ",
        f"SELECT id, sum(weight) AS score FROM ({matches}) CROSS JOIN weights USING (term) "
        "GROUP BY id ORDER BY score DESC, id DESC",
    )


def checked_too_few(dense: bool) -> str:
    """SQL, after `ranked_sql`'s CTEs (SQLite, `dense`): whether more than `:checked` matches
    were read but only the best `:checked` checked, and fewer than `:limit` of those were the
    conversation's: checking them all could find more (search again with `:checked` -1).
    FALSE when not dense."""
    if not dense:
        return "FALSE"
    return (
        "(:checked >= 0 AND (SELECT count(*) FROM ranked) < :limit "
        "AND (SELECT sum(n) FROM stats) > :checked)"  # the matches read (stats: a row a word)
    )


def _fts5_arm(fts: str, n: int, before: str) -> str:
    """The SQL reading word `n`'s newest matches, as (term, id) rows (and `_tsvector_arm`)."""
    return (
        f"SELECT {n} AS term, rowid AS id FROM (SELECT rowid FROM {fts} "
        f"WHERE {fts} MATCH :q{n} AND rowid > :after AND rowid < {before} "
        "ORDER BY rowid DESC LIMIT :per_term)"
    )


def _tsvector_arm(table: Table, n: int, before: str) -> str:
    # PostgreSQL passages: GIN or a backward index scan, whichever the planner expects to stop
    # sooner (both read the row of every candidate; passages are far fewer than messages).
    return (
        f"SELECT {n} AS term, id FROM (SELECT id FROM {table} "
        "WHERE conversation_id IN :conversations AND id > :after "
        # `id + 0`: kept out of index conditions. Computed in the statement, the bound is
        # unknown to the planner, which then takes it for selective and ANDs a bitmap of the
        # whole id range (10 ms a word at 100k messages).
        f"AND id + 0 < {before} AND search @@ to_tsquery('english', :q{n}) "
        f"ORDER BY id DESC LIMIT :per_term) AS t{n}"
    )


# PostgreSQL messages: each word's matches read from the word table's primary key
# (conversation_id, word, id) backwards, index only, in each conversation (then the newest of
# those), so the rows of a word's older matches are never read (migration 0012_message_words).
# The words come as an array: one text for any number of them, so the server prepares and
# plans it once (planning a statement with an arm per word took ~2 ms, as long as running it).
# An arm for the words matched whole, one for those matched as prefixes (rare, see `prefix`):
# words compare bytewise, so those starting with `word` sort right after it; a range has no
# index order by id, so they are all read and sorted. A term becomes the word its tsvector
# stores ('english': stemmed; none for a stop word: no match). A term the parser splits
# (letters around a superscript or a fraction, "x²y") is searched by the first of its words in
# tsvector order, not as a phrase. Terms are numbered from 0, as in `_arm`.
_WORD = "(tsvector_to_array(to_tsvector('english', t.word)))[1] COLLATE \"C\""
_WORDS_ARM = (
    "SELECT t.n - 1 AS term, x.id FROM unnest(CAST(:words AS text[]), "
    "CAST(:prefixed AS boolean[])) WITH ORDINALITY AS t(word, prefixed, n) "
    "CROSS JOIN LATERAL (SELECT w.id FROM conversations AS c CROSS JOIN LATERAL "
    "(SELECT id FROM message_words WHERE conversation_id = c.id AND {matching} "
    "AND id > :after AND id < {before} ORDER BY id DESC LIMIT :per_term) AS w "
    "WHERE c.id IN :conversations ORDER BY w.id DESC LIMIT :per_term) AS x WHERE {which}"
)


def _words_scan(before: str) -> str:
    whole = _WORDS_ARM.format(matching=f"word = {_WORD}", before=before, which="NOT t.prefixed")
    starting = f"word >= {_WORD} AND word < {_WORD} || chr(1114111)"
    prefixes = _WORDS_ARM.format(matching=starting, before=before, which="t.prefixed")
    return f"{whole} UNION ALL {prefixes}"


def statement(sql: str, values: dict[str, Any], columns: Columns) -> TextualSelect:
    """`sql` as a statement selecting `columns`, whose list parameters expand (`IN :name`):
    one text for every conversation, so it is compiled and prepared once (tuples are passed
    whole: arrays). Built once per text too (building it left cyclic garbage for the collector
    on every message)."""
    lists = tuple(name for name, value in values.items() if isinstance(value, list))
    return _statement(sql, lists, columns)


@lru_cache(maxsize=256)
def _statement(sql: str, lists: tuple[str, ...], columns: Columns) -> TextualSelect:
    expanding: list[BindParameter[Any]] = [bindparam(name, expanding=True) for name in lists]
    return text(sql).bindparams(*expanding).columns(*columns.value)


class Columns(Enum):
    """What a ranked search selects (an Enum: hashable, so statements can be cached by it)."""

    MESSAGE_HITS = (
        Message.id,
        Message.author_name,
        Message.content,
        Message.created_at,
        Message.conversation_id,
        Message.tokens,
        Message.role,
    )
    PASSAGE_HITS = (
        Passage.id,
        Document.author_name,
        Passage.content,
        Document.created_at,
        Document.filename,
        Passage.conversation_id,
        Passage.tokens,
    )
    RECALL = (
        column("start", Integer),
        column("documents", Boolean),
        column("dense", Boolean),
        column("short", Boolean),
        column("size", Float),
        column("cut", Boolean),
        *MESSAGE_HITS,
        column("score", Float),
        column("prev", Integer),
        column("next", Integer),
    )
