"""Where configuration lives, and names in it that Parley does not know.

`parley.toml`: `PARLEY_CONFIG`, else `./parley.toml`, else `$XDG_CONFIG_HOME/parley/parley.toml`
(`~/.config/parley/`). `.env`: beside `PARLEY_CONFIG`, else `./.env`, else the same user
directory. So `parley` finds its settings from any working directory, and `parley init` writes
where they will be found.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

from dotenv import dotenv_values

TOML_NAME = "parley.toml"
ENV_NAME = ".env"
# Read by Parley itself or its tests, not settings fields.
_OTHER_VARIABLES = frozenset({"PARLEY_CONFIG"})
_OTHER_PREFIXES = ("PARLEY_TEST_",)


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "parley"


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def toml_path() -> Path | None:
    """The parley.toml in use, or None. PARLEY_CONFIG is taken as given: a missing file there
    adds nothing, but no other file is read instead (containers and units rely on that)."""
    chosen = os.environ.get("PARLEY_CONFIG")
    if chosen:
        return Path(chosen)
    return _first_existing([Path(TOML_NAME), user_config_dir() / TOML_NAME])


def env_path() -> Path | None:
    chosen = os.environ.get("PARLEY_CONFIG")
    beside = [Path(chosen).parent / ENV_NAME] if chosen else []
    return _first_existing([*beside, Path(ENV_NAME), user_config_dir() / ENV_NAME])


def read_toml(path: Path) -> dict[str, object]:
    """The file's table; OSError or tomllib.TOMLDecodeError (which names line and column)."""
    with path.open("rb") as file:
        return tomllib.load(file)


def _closest(name: str, known: Iterable[str]) -> str | None:
    # Compared without the shared PARLEY_ prefix, which would make every name look close.
    by_stem = {option.lower().removeprefix("parley_"): option for option in known}
    stem = name.lower().removeprefix("parley_")
    matches = difflib.get_close_matches(stem, list(by_stem), n=1, cutoff=0.6)
    return by_stem[matches[0]] if matches else None


def unknown_names(
    env_names: Iterable[str], toml_keys: Iterable[str], fields: dict[str, list[str]]
) -> Iterator[tuple[str, str | None]]:
    """(unknown name, closest known name) for PARLEY_* variables and parley.toml keys.

    `fields` maps each setting to the variables that set it (PARLEY_X or an alias)."""
    variables = {name for names in fields.values() for name in names} | _OTHER_VARIABLES
    for name in sorted(set(env_names)):
        upper = name.upper()
        ours = upper.startswith("PARLEY_") and not upper.startswith(_OTHER_PREFIXES)
        if ours and upper not in variables:
            yield name, _closest(upper, variables)
    # Keys are field names; aliased fields also take their variable's name (OPENAI_API_KEY).
    aliases = {
        name for names in fields.values() for name in names if not name.startswith("PARLEY_")
    }
    keys = set(fields) | aliases
    for key in sorted(set(toml_keys)):
        if key not in keys:
            yield key, _closest(key, fields)


def env_file_names(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [name for name in dotenv_values(path) if name]
