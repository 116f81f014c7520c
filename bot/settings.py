"""Configuration: environment variables, a `.env` file and an optional `parley.toml`.

Environment variables win over `.env`, which wins over `parley.toml` (keys are the field names,
e.g. `model = "gpt-4o"`). Each field's description feeds `parley --help` texts and README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


def _alias(env: str, field: str) -> AliasChoices:
    """Read a field from a well-known variable (e.g. OPENAI_API_KEY) or its toml key."""
    return AliasChoices(field, env)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parley"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PARLEY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # The chat API
    openai_api_key: Annotated[str | None, Field(
        validation_alias=_alias("OPENAI_API_KEY", "openai_api_key"),
        description="API key for the chat endpoint (optional for local servers such as Ollama).",
    )] = None
    openai_base_url: Annotated[str, Field(
        validation_alias=_alias("OPENAI_BASE_URL", "openai_base_url"),
        description="Base URL of the OpenAI-compatible API, e.g. http://localhost:11434/v1.",
    )] = DEFAULT_OPENAI_URL
    model: Annotated[str, Field(description="Chat model name.")] = "gpt-4o-mini"
    context_tokens: Annotated[int | None, Field(
        gt=256, description="Context window in tokens; default: from the known-models table.",
    )] = None
    max_reply_tokens: Annotated[int, Field(
        gt=0, description="Tokens reserved for the reply (sent as the reply limit).",
    )] = 1024
    request_timeout: Annotated[float, Field(
        gt=0, description="Seconds to wait for the chat API before giving up on one attempt.",
    )] = 60.0
    model_retries: Annotated[int, Field(
        ge=0, le=10, description="Retries of a failed chat call (429, 5xx, timeouts) with backoff.",
    )] = 3
    system_prompt: Annotated[str, Field(
        description="Default persona (system prompt) for every conversation.",
    )] = (
        "You are Parley, a helpful assistant taking part in a chat. User messages start with the "
        "speaker's name in square brackets. Answer concisely and use Markdown when it helps."
    )

    # Storage
    database_url: Annotated[str | None, Field(
        description="SQLAlchemy URL; default: a SQLite file in the data directory. "
        "PostgreSQL: postgresql+asyncpg://user:pass@host/db.",
    )] = None
    data_dir: Annotated[Path, Field(
        description="Directory for the default SQLite database.",
    )] = Field(default_factory=default_data_dir)

    # Long-term memory
    recall: Annotated[bool, Field(
        description="Recall relevant older messages and shared documents, and keep a rolling "
        "summary of what left the window. false: the plain window only.",
    )] = True
    recall_share: Annotated[float, Field(
        ge=0, le=0.5, description="Share of the message budget for recalled excerpts.",
    )] = 0.2
    summary_share: Annotated[float, Field(
        ge=0, le=0.3, description="Share of the message budget for the rolling summary.",
    )] = 0.1
    recall_scope: Annotated[Literal["conversation", "workspace"], Field(
        description="Where recall may look: this conversation only, or every conversation of "
        "the same workspace (server / Slack team).",
    )] = "conversation"
    retention_days: Annotated[int | None, Field(
        gt=0, description="Delete messages and documents older than this many days (checked at "
        "start-up and hourly); unset: keep everything.",
    )] = None

    # Replies on chat platforms
    stream_interval: Annotated[float, Field(
        ge=0.2, description="Seconds between edits of a streamed reply on Discord and Slack.",
    )] = 1.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("PARLEY_CONFIG", "parley.toml"))
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"

    @property
    def uses_default_endpoint(self) -> bool:
        return self.openai_base_url.rstrip("/") == DEFAULT_OPENAI_URL


class ConfigError(Exception):
    """A setting is missing or invalid; the message says what to set."""


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"PARLEY_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, `.env` and `parley.toml`, or a one-line ConfigError."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = _env_name(field) if field in Settings.model_fields else field
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from exc
    if settings.uses_default_endpoint and not settings.openai_api_key:
        raise ConfigError(
            "OPENAI_API_KEY is not set: set it, or point OPENAI_BASE_URL at a local "
            "OpenAI-compatible server such as Ollama."
        )
    return settings
