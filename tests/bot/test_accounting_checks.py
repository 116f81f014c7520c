"""Limits, prices, blocked words and moderation are configured like every setting and checked
by `parley doctor` (against the fake model's /v1/moderations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.checks import Check
from bot.doctor import diagnose
from bot.settings import load_settings
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel
from tests.process import parley_env, run_parley


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_settings_come_from_environment_dotenv_and_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "parley.toml").write_text(
        'user_tokens_per_day = 50000\nmoderation = "endpoint"\nprices = "prices.toml"\n',
        encoding="utf-8",
    )
    (tmp_path / ".env").write_text("PARLEY_MAX_CONCURRENT_REPLIES=4\n", encoding="utf-8")
    monkeypatch.setenv("PARLEY_CONFIG", str(tmp_path / "parley.toml"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PARLEY_USER_MESSAGES_PER_MINUTE", "5")
    monkeypatch.setenv("PARLEY_LIMITS_EXEMPT_ADMINS", "true")
    monkeypatch.setenv("PARLEY_MODERATE_REPLIES", "true")
    monkeypatch.setenv("PARLEY_MODERATION_FAIL", "closed")
    settings = load_settings()
    assert (settings.user_messages_per_minute, settings.user_tokens_per_day) == (5, 50000)
    assert settings.limits_exempt_admins and settings.moderate_replies
    assert settings.max_concurrent_replies == 4
    assert (settings.moderation, settings.moderation_fail) == ("endpoint", "closed")
    assert settings.prices == Path("prices.toml")


async def test_doctor_checks_limits_prices_words_and_moderation(
    make_settings: SettingsFactory, fake_model: FakeModel, tmp_path: Path
) -> None:
    prices, words = tmp_path / "prices.toml", tmp_path / "words.txt"
    prices.write_text('["gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n', encoding="utf-8")
    words.write_text("바보\n# a comment\ndarn\n", encoding="utf-8")
    settings = make_settings(
        user_messages_per_minute=5,
        max_concurrent_replies=2,
        prices=prices,
        blocked_words=words,
        moderation="endpoint",
    )
    checks = by_name(await diagnose(settings))
    assert all(check.ok for check in checks.values()), checks
    assert checks["limits"].detail == "5 messages per minute per person, 2 model requests at once"
    assert checks["prices"].detail.startswith("1 model(s) priced")
    assert checks["blocked words"].detail.startswith("2 blocked words")
    assert "moderations answers (fails open)" in checks["moderation"].detail

    fake_model.moderation_failure = Fail(404, "no such route")
    prices.write_text('["other-model"]\ninput = 1\n', encoding="utf-8")
    checks = by_name(await diagnose(settings.model_copy(update={"blocked_words": tmp_path / "x"})))
    for name in ("prices", "blocked words", "moderation"):
        assert not checks[name].ok and checks[name].fix, name
    assert "not gpt-4o-mini" in checks["prices"].detail


async def test_bad_prices_file_stops_the_cli_and_fails_doctor(
    fake_model: FakeModel, sqlite_url: str, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('["gpt-4o-mini"]\ninput = -1\n', encoding="utf-8")
    env = parley_env(
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_model.base_url,
        PARLEY_DATABASE_URL=sqlite_url,
        PARLEY_PRICES=str(prices),
    )
    result = await run_parley("usage", env=env)
    assert result.code == 2
    assert "PARLEY_PRICES: [gpt-4o-mini] needs numbers" in result.stderr
    assert "Traceback" not in result.stderr
    doctor = await run_parley("doctor", env=env)
    assert doctor.code == 1
    assert "[FAIL] prices: PARLEY_PRICES: [gpt-4o-mini] needs numbers" in doctor.stdout
