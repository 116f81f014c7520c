"""The configuration reference, rendered from the settings model (README's table).

python -m bot.settings_doc                 # print the table
python -m bot.settings_doc --write README.md  # refresh it between the markers
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic.fields import FieldInfo

from bot.plugins import discover
from bot.settings import Settings, SettingsSection, env_name, is_secret

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
# Defaults computed at run time, shown as what they resolve to.
_COMPUTED_DEFAULTS = {"data_dir": "`$XDG_DATA_HOME/parley` (`~/.local/share/parley`)"}
_LONGEST_DEFAULT = 40


@dataclass(frozen=True)
class SettingDoc:
    key: str  # parley.toml key (the field name)
    env: str
    default: object  # the default value (None when unset); not for computed defaults
    description: str
    computed: bool = False


def describe(name: str, field: FieldInfo, kind: type[SettingsSection] = Settings) -> SettingDoc:
    computed = field.default_factory is not None
    return SettingDoc(
        name,
        env_name(name, kind),
        None if computed else field.default,
        field.description or "",
        computed,
    )


def sections() -> list[type[SettingsSection]]:
    """The core's settings, then each installed adapter's section."""
    return [Settings, *(plugin.section for plugin in discover())]


def setting_docs() -> list[SettingDoc]:
    return [
        describe(name, field, kind)
        for kind in sections()
        for name, field in kind.model_fields.items()
    ]


# Credentials: written to .env (not parley.toml) by `parley init`, redacted from logs.
SECRET_FIELDS = tuple(doc.key for doc in setting_docs() if is_secret(doc.key))


def _shown_default(doc: SettingDoc) -> str:
    if doc.computed:
        return _COMPUTED_DEFAULTS.get(doc.key, "(computed)")
    if doc.default is None:
        return "—"
    text = str(doc.default)
    if len(text) > _LONGEST_DEFAULT:
        text = text[:_LONGEST_DEFAULT].rstrip() + "…"
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_table() -> str:
    lines = [
        "| Environment variable | parley.toml key | Default | Description |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{doc.env}` | `{doc.key}` | {_cell(_shown_default(doc))} | {_cell(doc.description)} |"
        for doc in setting_docs()
    ]
    return "\n".join(lines)


def replace_section(document: str, table: str) -> str:
    """`document` with the text between the markers replaced by `table`."""
    head, start, rest = document.partition(START)
    _old, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"markers {START} … {END} not found")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(
            replace_section(path.read_text(encoding="utf-8"), reference_table()), encoding="utf-8"
        )
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(reference_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
