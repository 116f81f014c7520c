"""README's configuration reference is generated from the settings model and kept current."""

from __future__ import annotations

import pytest

from bot.settings import Settings
from bot.settings_doc import END, START, main, reference_table, replace_section
from tests.process import REPO


def test_readme_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == reference_table(), (
        "README is stale: run `python -m bot.settings_doc --write README.md`"
    )


def test_every_setting_is_documented() -> None:
    table = reference_table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"| `{name}` |" in table


def test_write_replaces_only_the_section(tmp_path: object) -> None:
    document = f"intro\n{START}\nold table\n{END}\noutro\n"
    updated = replace_section(document, "| new |")
    assert updated == f"intro\n{START}\n| new |\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers here", "| new |")


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.strip() == reference_table()
    assert main(["--bogus"]) == 2
