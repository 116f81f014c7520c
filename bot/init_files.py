"""`parley init`: a commented parley.toml and a .env for the secrets, from the settings model.

The essentials (endpoint, key, model, platforms) are filled in from the answers; every other
setting is listed commented out with its default, description and environment variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.config_files import ENV_NAME, TOML_NAME, user_config_dir
from bot.settings import DEFAULT_OPENAI_URL, Settings
from bot.settings_doc import SECRET_FIELDS, SettingDoc, setting_docs
from bot.texts import say

PLATFORMS = ("discord", "slack")
# Platform → the secrets asked for when it is chosen.
_PLATFORM_SECRETS = {
    "discord": ("discord_token",),
    "slack": ("slack_bot_token", "slack_app_token", "slack_signing_secret"),
}
_TOML_HEADER = """\
# Parley configuration, written by `parley init`.
# Each setting can also come from its environment variable (shown) or from .env; the
# environment wins over .env, which wins over this file. Secrets belong in .env.
"""
_ENV_HEADER = """\
# Parley secrets, written by `parley init`. Keep this file private (it is mode 600).
# Uncomment and fill in what you use; environment variables override these.
"""


@dataclass(frozen=True)
class Answers:
    openai_base_url: str = DEFAULT_OPENAI_URL
    model: str = str(Settings.model_fields["model"].default)
    secrets: dict[str, str] = field(default_factory=dict)  # field name → value


class Prompter(Protocol):
    def __call__(
        self, text: str, *, default: Any = ..., hide_input: bool = ..., show_default: bool = ...
    ) -> Any: ...


def ask_answers(prompt: Prompter) -> Answers:
    """Ask for the essentials in a terminal; empty answers leave placeholders."""
    base_url = str(prompt(say("init.endpoint"), default=DEFAULT_OPENAI_URL)).strip()
    secrets = {
        "openai_api_key": str(
            prompt(say("init.api_key"), default="", hide_input=True, show_default=False)
        )
    }
    model = str(prompt(say("init.model"), default=Answers.model)).strip()
    while True:
        chosen = [
            name.strip().lower()
            for name in str(prompt(say("init.platforms"), default="", show_default=False)).split(
                ","
            )
            if name.strip()
        ]
        unknown = [name for name in chosen if name not in PLATFORMS]
        if not unknown:
            break
        print(say("init.unknown_platform", names=", ".join(unknown)))
    for platform in chosen:
        for name in _PLATFORM_SECRETS[platform]:
            secrets[name] = str(
                prompt(say(f"init.{name}"), default="", hide_input=True, show_default=False)
            )
    return Answers(base_url, model, {k: v.strip() for k, v in secrets.items() if v.strip()})


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def _entry(doc: SettingDoc, value: object, chosen: bool) -> str:
    comment = f"# {doc.description}\n# env: {doc.env}\n"
    if chosen:
        return f"{comment}{doc.key} = {_toml_value(value)}\n"
    shown = "<computed>" if doc.computed else ("<not set>" if value is None else _toml_value(value))
    return f"{comment}# {doc.key} = {shown}\n"


def render_toml(answers: Answers) -> str:
    chosen = {"openai_base_url": answers.openai_base_url, "model": answers.model}
    entries = [
        _entry(doc, chosen.get(doc.key, doc.default), doc.key in chosen)
        for doc in setting_docs()
        if doc.key not in SECRET_FIELDS
    ]
    return _TOML_HEADER + "\n" + "\n".join(entries)


def render_env(answers: Answers) -> str:
    lines = [_ENV_HEADER]
    for doc in setting_docs():
        if doc.key in SECRET_FIELDS:
            value = answers.secrets.get(doc.key)
            line = f"{doc.env}={value}" if value else f"# {doc.env}="
            lines.append(f"# {doc.description}\n{line}\n")
    return "\n".join(lines)


def _write(path: Path, text: str, private: bool) -> None:
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(mode)  # O_CREAT's mode does not apply to a file that already existed


def write_files(directory: Path, answers: Answers, force: bool) -> Iterator[tuple[Path, bool]]:
    """Write parley.toml and .env; yields each path and whether it was written (an existing
    file is kept unless `force`)."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for name, text, private in (
        (TOML_NAME, render_toml(answers), False),
        (ENV_NAME, render_env(answers), True),
    ):
        path = directory / name
        if path.exists() and not force:
            yield path, False
            continue
        _write(path, text, private)
        yield path, True


def where_found(directory: Path) -> str:
    """How Parley will find the files just written (see `bot.config_files`)."""
    directory = directory.resolve()
    if directory == user_config_dir().resolve():
        return say("init.found_anywhere", path=directory)
    return say(
        "init.found_here", path=directory, toml=directory / TOML_NAME, user_dir=user_config_dir()
    )
