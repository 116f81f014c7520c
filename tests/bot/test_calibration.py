"""The calibration of counts per script: estimates of a text's script mix, learning fast upwards
and slowly downwards, mixed texts, and the safety margin."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.calibration import DEFAULT_FACTORS, MARGIN, Calibrator, mix

# `engine` (conftest): a migrated SQLite file and a PostgreSQL database in turn.


@pytest.fixture
def calibrator(engine: AsyncEngine) -> Calibrator:
    return Calibrator(engine, "local-model", native=False)


def test_the_mix_weighs_scripts_by_tokens_not_characters() -> None:
    assert mix("The quick brown fox jumps over the lazy dog.") == {"other": 1.0}
    assert mix("안녕하세요")["hangul"] == 1.0
    # Five syllables outweigh a dozen Latin letters: they cost more tokens.
    mixed = mix("안녕하세요 how are you")
    assert mixed["hangul"] > mixed["other"] > 0
    assert set(mix("こんにちは 你好 Привет 🙂")) == {"cjk", "cyrillic", "emoji", "other"}


async def test_an_unknown_model_starts_conservative_and_learns(
    engine: AsyncEngine, calibrator: Calibrator
) -> None:
    korean = {"hangul": 1.0}
    assert calibrator.factor(korean) == DEFAULT_FACTORS["hangul"]
    await calibrator.observe(korean, counted=100, theirs=370)
    assert calibrator.factor(korean) == pytest.approx(3.7 * MARGIN)
    # Lower reports ease the factor down; a higher one is taken at once.
    await calibrator.observe(korean, counted=100, theirs=300)
    assert 3.0 * MARGIN < calibrator.factor(korean) < 3.7 * MARGIN
    await calibrator.observe(korean, counted=100, theirs=420)
    assert calibrator.factor(korean) == pytest.approx(4.2 * MARGIN)
    reloaded = Calibrator(engine, "local-model", native=False)
    await reloaded.load()
    assert reloaded.factor(korean) == pytest.approx(4.2 * MARGIN)


async def test_a_settled_model_costs_no_write_per_reply(
    engine: AsyncEngine, calibrator: Calibrator
) -> None:
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    korean = {"hangul": 1.0}
    await calibrator.observe(korean, counted=100, theirs=370)
    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    for theirs in (371, 370, 369, 370):  # within 1% of what was written
        await calibrator.observe(korean, counted=100, theirs=theirs)
    assert statements == []
    await calibrator.observe(korean, counted=100, theirs=400)
    assert len(statements) == 1  # one upsert
    # Another process learning the same model: its latest value is what a restart loads.
    other = Calibrator(engine, "local-model", native=False)
    await other.observe(korean, counted=100, theirs=450)
    reloaded = Calibrator(engine, "local-model", native=False)
    await reloaded.load()
    assert reloaded.factor(korean) == pytest.approx(4.5 * MARGIN)


async def test_a_mixed_text_that_costs_more_raises_every_script_in_it(
    calibrator: Calibrator,
) -> None:
    shares = {"hangul": 0.5, "other": 0.5}
    before = calibrator.factor(shares)
    await calibrator.observe(shares, counted=100, theirs=int(before * 100 * 1.2))
    assert calibrator.factor(shares) > before
    assert calibrator.factor({"cjk": 1.0}) == DEFAULT_FACTORS["cjk"]  # not in the text


async def test_openai_models_count_exactly_until_shown_otherwise(engine: AsyncEngine) -> None:
    native = Calibrator(engine, "gpt-4o-mini", native=True)
    assert native.factor({"hangul": 1.0}) == 1.0
    await native.observe({"hangul": 1.0}, counted=100, theirs=97)
    assert native.factor({"hangul": 1.0}) == 1.0  # no margin needed below 1
