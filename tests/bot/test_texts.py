"""Every message exists in English and Korean, with the same placeholders; PARLEY_LOCALE
chooses which one people see."""

from __future__ import annotations

import re
import string

import pytest

from bot.messages import Outcome
from bot.runtime import open_parley
from bot.texts import EN, KO, LOCALES, TEXTS, current_locale, say, use_locale
from tests.conftest import SettingsFactory
from tests.helpers import ask
from tests.process import parley_env, run_parley

HANGUL = re.compile("[\uac00-\ud7a3]")


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_locale_has_every_key() -> None:
    assert set(TEXTS) == set(LOCALES) == {"en", "ko"}
    assert set(EN) == set(KO)


@pytest.mark.parametrize("key", sorted(EN))
def test_translation_matches(key: str) -> None:
    assert placeholders(EN[key]) == placeholders(KO[key]), key
    # Only the deliberately silent text may be empty, and then in both languages.
    assert bool(EN[key]) == bool(KO[key]) and (EN[key] or key == "duplicate")


def test_say_follows_the_locale() -> None:
    assert say("empty") == EN["empty"]
    use_locale("ko")
    assert current_locale() == "ko"
    text = say("unknown_command", name="nope")
    assert HANGUL.search(text) and "`/nope`" in text and "`/help`" in text


async def test_parley_speaks_korean(make_settings: SettingsFactory) -> None:
    async with open_parley(make_settings(locale="ko")) as parley:
        help_text = (await ask(parley, "/help")).text
    assert HANGUL.search(help_text) and "/reset" in help_text

    unreachable = make_settings(locale="ko", openai_base_url="http://127.0.0.1:9/v1")
    async with open_parley(unreachable) as parley:
        final = await ask(parley, "hello?")
    assert final.outcome is Outcome.UNREACHABLE
    assert HANGUL.search(final.text) and "OPENAI_BASE_URL" in final.text


async def test_english_is_the_default(make_settings: SettingsFactory) -> None:
    async with open_parley(make_settings()) as parley:
        assert (await ask(parley, "/help")).text.startswith(EN["help.header"])


async def test_command_line_speaks_korean() -> None:
    result = await run_parley("chat", stdin="hello\n", env=parley_env(PARLEY_LOCALE="ko"))
    assert result.code == 2
    line = result.stderr.strip()
    assert "\n" not in line and HANGUL.search(line) and "OPENAI_API_KEY" in line
    assert line.startswith("설정 오류:")
