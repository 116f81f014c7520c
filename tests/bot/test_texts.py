"""Every message exists in English and Korean, with the same placeholders; PARLEY_LOCALE
chooses which one people see."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bot.messages import Outcome
from bot.runtime import open_parley
from bot.texts import EN, KO, LOCALES, TEXTS, current_locale, say, use_locale
from tests.conftest import SettingsFactory
from tests.helpers import ask
from tests.process import REPO, parley_env, run_parley

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


# Modules that talk to a person directly (not through say()).
SPEAKERS = (
    "bot/cli.py",
    "bot/doctor.py",
    "bot/init_files.py",
    "bot/settings.py",
    "bot/config_checks.py",
    "bot/doctor_model.py",
    "adapters/terminal/chat.py",
    "adapters/terminal/screen.py",
    "adapters/terminal/plugin.py",
    "adapters/discord/plugin.py",
    "adapters/discord/doctor.py",
    "adapters/slack/doctor.py",
)
_OUTPUT = {"echo", "print", "prompt", "write", "note", "error", "Check", "ConfigError", "Exit"}
_NOT_WORDS = {"parley"}  # the command's own name


def _literal_words(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    else:
        return set()
    return {word.lower() for word in re.findall(r"[A-Za-z]{2,}", text)} - _NOT_WORDS


def test_everything_the_command_line_says_is_in_both_languages() -> None:
    """No sentence is written to a person from a literal: it comes from say(), which has
    English and Korean (checked above)."""
    found = []
    for module in SPEAKERS:
        tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in _OUTPUT:
                continue
            arguments = [*node.args, *(k.value for k in node.keywords if k.arg != "style")]
            if name == "Check" and node.args:  # a check's name: worded by doctor.name.*
                check_name = node.args[0]
                if isinstance(check_name, ast.Constant):
                    assert f"doctor.name.{check_name.value!s}" in EN, check_name.value
                arguments = arguments[1:]
            for argument in arguments:
                if _literal_words(argument):
                    found.append(f"{module}:{node.lineno}: {ast.unparse(argument)}")
    assert found == []


async def test_command_line_help_and_init_speak_korean(tmp_path: Path) -> None:
    env = parley_env(PARLEY_LOCALE="ko")
    help_text = (await run_parley("--help", env=env)).stdout
    commands = help_text[help_text.index("Commands:") :].splitlines()[1:]
    assert commands and all(HANGUL.search(line) for line in commands if line.strip())
    init = await run_parley("init", "--no-ask", "--dir", str(tmp_path), env=env)
    assert init.code == 0
    assert all(HANGUL.search(line) for line in init.stdout.splitlines()), init.stdout


async def test_validation_errors_speak_korean() -> None:
    env = parley_env(PARLEY_LOCALE="ko", OPENAI_API_KEY="sk-test", PARLEY_CONTEXT_TOKENS="lots")
    result = await run_parley("chat", stdin="hello\n", env=env)
    line = result.stderr.strip()
    assert result.code == 2 and "\n" not in line
    assert line.startswith("설정 오류: PARLEY_CONTEXT_TOKENS: 정수여야 해요")
