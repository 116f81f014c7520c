"""The SQL that ranks full-text matches, as common table expressions ending in
`ranked(id, score)`: the best `:limit` rows of a table matching any search word, with
`:after < id < {before}`, highest score first (newest first among equals).

Every word reads only its newest _PER_TERM matches (FTS5 and a backward index scan both stop
early), so the work does not grow with the history; the candidates are ranked in the same
statement, which callers extend (recall adds the window start and the adjacent turns), so a
search costs one round trip however many words it has.

SQLite: a row scores the summed rarity (IDF) of the words it contains; a common word's
frequency is extrapolated from how far back its newest matches reach. PostgreSQL: `ts_rank`
over the union of the words' candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from memory.analysis import has_cjk, lone_han_kana

Table = Literal["messages", "document_passages"]
FTS_TABLES: dict[Table, str] = {"messages": "messages_fts", "document_passages": "passages_fts"}
# Matches read per word.
PER_TERM = 200


def prefix(term: str) -> bool:
    # Other non-Latin scripts keep matching on a word's start, as before analysis existed.
    return (not term.isascii() and not has_cjk(term)) or lone_han_kana(term)


def fts5_query(terms: Sequence[str], conversation_ids: Sequence[int]) -> str:
    """An FTS5 MATCH expression: any of `terms`, only in the given conversations."""
    words = " OR ".join(f'"{t}"*' if prefix(t) else f'"{t}"' for t in terms)
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
) -> tuple[str, dict[str, Any]]:
    """CTEs (without `WITH`) ending in `ranked(id, score)`, and their parameters besides
    `:after`, `:limit` and whatever `before` (an SQL expression) names."""
    values: dict[str, Any] = {"per_term": PER_TERM}
    candidates = []
    for n, term in enumerate(terms):
        if sqlite:
            fts = FTS_TABLES[table]
            values[f"q{n}"] = fts5_query([term], conversation_ids)
            candidates.append(
                f"SELECT {n} AS term, rowid AS id FROM (SELECT rowid FROM {fts} "
                f"WHERE {fts} MATCH :q{n} AND rowid > :after AND rowid < {before} "
                "ORDER BY rowid DESC LIMIT :per_term)"
            )
        else:
            values[f"q{n}"] = tsquery([term])
            candidates.append(
                f"SELECT {n} AS term, id FROM (SELECT id FROM {table} "
                f"WHERE conversation_id IN ({_ints(conversation_ids)}) AND id > :after "
                f"AND id < {before} AND search @@ to_tsquery('english', :q{n}) "
                f"ORDER BY id DESC LIMIT :per_term) AS t{n}"
            )
    hits = f"hits AS ({' UNION ALL '.join(candidates)})"
    if not sqlite:
        values["query"] = tsquery(terms)
        return (
            f"{hits}, ranked AS (SELECT c.id, ts_rank(c.search, q) AS score "
            f"FROM {table} AS c, to_tsquery('english', :query) AS q "
            "WHERE c.id IN (SELECT id FROM hits) ORDER BY score DESC, c.id DESC LIMIT :limit)",
            values,
        )
    return (
        f"{hits}, "
        "stats AS (SELECT term, count(*) AS n, max(id) AS newest, min(id) AS oldest "
        "FROM hits GROUP BY term), "
        "span AS (SELECT max(newest) - :after + 1 AS searched FROM stats), "
        "weights AS (SELECT term, ln(1.0 + searched * 1.0 / (CASE WHEN n < :per_term THEN n "
        "ELSE min(searched, n * (newest - :after) * 1.0 / max(newest - oldest, 1)) END)) "
        "AS weight FROM stats, span), "
        "ranked AS (SELECT id, sum(weight) AS score FROM hits JOIN weights USING (term) "
        "GROUP BY id ORDER BY score DESC, id DESC LIMIT :limit)",
        values,
    )


def _ints(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)
