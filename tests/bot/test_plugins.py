"""Adapters are plug-ins: the core finds them (and a third party's, from its own installed
package) through the `parley.adapters` entry points (tests/test_layers.py checks it never
imports them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.plugins import configured_adapters, discover
from bot.settings_doc import reference_table
from tests.conftest import SettingsFactory
from tests.fakes.model_server import FakeModel
from tests.process import REPO, parley_env, run_parley

# A third party's adapter package: a settings section, rules, an adapter, a check, a command.
_ECHO_PLUGIN = '''
from pydantic import Field

from bot.checks import Check
from bot.messages import Author, ConversationKey, Facts, Final, Inbound
from bot.plugins import AdapterPlugin
from bot.policy import PlatformRules, Verdict
from bot.settings import SettingsSection

ANSWERS = []


class EchoSettings(SettingsSection):
    echo_greeting: str | None = Field(default=None, description="What the echo adapter says.")


class EchoAdapter:
    name = "echo"

    def __init__(self, section):
        self.section = section

    async def run(self, parley):
        message = Inbound(
            ConversationKey("echo", "w", "c"), Author("u", "U"), self.section.echo_greeting,
            message_id="1", facts=Facts(mentioned=True),
        )
        admission = await parley.admit(message)
        assert admission.verdict is Verdict.ANSWER
        async for event in parley.reply(admission.message):
            if isinstance(event, Final):
                ANSWERS.append(event.text)


async def checks(section, probe):
    return [Check("echo", True, f"greeting {section.echo_greeting}")]


def commands(app, run):
    @app.command("echo-hello")
    def hello():
        """Say hello from the echo adapter."""
        print("hello from echo")


PLUGIN = AdapterPlugin(
    name="echo",
    section=EchoSettings,
    rules=lambda section: PlatformRules(),
    configured=lambda section: bool(section.echo_greeting),
    build=EchoAdapter,
    checks=checks,
    commands=commands,
)
'''


def test_the_bundled_adapters_are_entry_points() -> None:
    assert [plugin.name for plugin in discover()] == ["discord", "slack", "terminal"]


@pytest.fixture
def echo_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed third-party package declaring the `echo` adapter."""
    site = tmp_path / "site"
    (site / "echo_adapter.py").parent.mkdir()
    (site / "echo_adapter.py").write_text(_ECHO_PLUGIN, encoding="utf-8")
    info = site / "echo_adapter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-adapter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[parley.adapters]\necho = echo_adapter:PLUGIN\n")
    monkeypatch.syspath_prepend(str(site))
    discover.cache_clear()
    yield site
    discover.cache_clear()
    sys.modules.pop("echo_adapter", None)


async def test_a_third_party_adapter_is_found_configured_and_run(
    echo_package: Path, make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    from bot.runtime import open_parley

    assert [plugin.name for plugin in discover()] == ["discord", "echo", "slack", "terminal"]
    assert "`PARLEY_ECHO_GREETING`" in reference_table()
    assert configured_adapters(make_settings()) == []
    settings = make_settings(echo_greeting="hi there")
    (adapter,) = configured_adapters(settings)
    async with open_parley(settings) as parley:
        await adapter.run(parley)
    assert sys.modules["echo_adapter"].ANSWERS == ["echo: [U] hi there"]


async def test_a_third_party_adapter_brings_its_command_and_checks(
    echo_package: Path, fake_model: FakeModel, sqlite_url: str
) -> None:
    env = parley_env(
        PYTHONPATH=f"{REPO}:{echo_package}",
        OPENAI_BASE_URL=fake_model.base_url,
        OPENAI_API_KEY="sk-test",
        PARLEY_DATABASE_URL=sqlite_url,
        PARLEY_ECHO_GREETING="hi",
    )
    hello = await run_parley("echo-hello", env=env)
    assert hello.code == 0 and hello.stdout.strip() == "hello from echo"
    doctor = await run_parley("doctor", env=env)
    assert "echo: greeting hi" in doctor.stdout
