"""Configuration: environment variables, a `.env` file and an optional `parley.toml`.

Environment variables win over `.env`, which wins over `parley.toml` (keys are the field names,
e.g. `model = "gpt-4o"`). Each field's description feeds `parley --help` texts and README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.search.config import search_problem
from bot.texts import say, use_locale

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"


def _alias(env: str, field: str) -> AliasChoices:
    """Read a field from a well-known variable (e.g. OPENAI_API_KEY) or its toml key."""
    return AliasChoices(field, env)


def _comma_separated(value: object) -> object:
    """ "1, 2,3" from the environment → ["1", "2", "3"]; lists (toml) pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


# A set of ids (or names) written as "a,b,c" in the environment or a list in parley.toml.
IdList = Annotated[frozenset[str], NoDecode, BeforeValidator(_comma_separated)]


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
    openai_api_key: Annotated[
        str | None,
        Field(
            validation_alias=_alias("OPENAI_API_KEY", "openai_api_key"),
            description=(
                "API key for the chat endpoint (optional for local servers such as Ollama)."
            ),
        ),
    ] = None
    openai_base_url: Annotated[
        str,
        Field(
            validation_alias=_alias("OPENAI_BASE_URL", "openai_base_url"),
            description="Base URL of the OpenAI-compatible API, e.g. http://localhost:11434/v1.",
        ),
    ] = DEFAULT_OPENAI_URL
    model: Annotated[str, Field(description="Chat model name.")] = "gpt-4o-mini"
    context_tokens: Annotated[
        int | None,
        Field(
            gt=256,
            description="Context window in tokens; default: from the known-models table.",
        ),
    ] = None
    max_reply_tokens: Annotated[
        int,
        Field(
            gt=0,
            description="Tokens reserved for the reply (sent as the reply limit).",
        ),
    ] = 1024
    request_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds to wait for the chat API before giving up on one attempt.",
        ),
    ] = 60.0
    model_retries: Annotated[
        int,
        Field(
            ge=0,
            le=10,
            description="Retries of a failed chat call (429, 5xx, timeouts) with backoff.",
        ),
    ] = 3
    system_prompt: Annotated[
        str,
        Field(
            description="Default persona (system prompt) for every conversation.",
        ),
    ] = (
        "You are Parley, a helpful assistant taking part in a chat. User messages start with the "
        "speaker's name in square brackets. Answer concisely and use Markdown when it helps."
    )

    # Storage
    database_url: Annotated[
        str | None,
        Field(
            description="SQLAlchemy URL; default: a SQLite file in the data directory. "
            "PostgreSQL: postgresql+asyncpg://user:pass@host/db.",
        ),
    ] = None
    data_dir: Annotated[
        Path,
        Field(
            description="Directory for the default SQLite database.",
        ),
    ] = Field(default_factory=default_data_dir)

    # Long-term memory
    recall: Annotated[
        bool,
        Field(
            description="Recall relevant older messages and shared documents, and keep a rolling "
            "summary of what left the window. false: the plain window only.",
        ),
    ] = True
    recall_share: Annotated[
        float,
        Field(
            ge=0,
            le=0.5,
            description="Share of the message budget for recalled excerpts. What recall does not "
            "use goes to the window; it grows up to twice this (at most half the budget) when "
            "several rankings agree on more relevant older history.",
        ),
    ] = 0.2
    summary_share: Annotated[
        float,
        Field(
            ge=0,
            le=0.3,
            description="Share of the message budget for the rolling summary.",
        ),
    ] = 0.1
    recall_scope: Annotated[
        Literal["conversation", "workspace"],
        Field(
            description="Where recall may look: this conversation only, or every conversation of "
            "the same workspace (server / Slack team).",
        ),
    ] = "conversation"
    embedding_model: Annotated[
        str | None,
        Field(
            description="Embedding model on the chat endpoint (`/v1/embeddings`, e.g. "
            "text-embedding-3-small or nomic-embed-text): recall also ranks by meaning, not only "
            "by shared words. Unset: keyword recall only.",
        ),
    ] = None
    retention_days: Annotated[
        int | None,
        Field(
            gt=0,
            description="Delete messages and documents older than this many days (checked at "
            "start-up and hourly); unset: keep everything.",
        ),
    ] = None

    strict_roles: Annotated[
        bool,
        Field(
            description="Send one system message and strictly alternating user/assistant turns, "
            "for chat templates that require it (e.g. Mistral models on vLLM).",
        ),
    ] = False

    # Limits, usage and moderation
    user_messages_per_minute: Annotated[
        int | None,
        Field(
            gt=0,
            description="Messages one person may send to the model per minute (across every "
            "process sharing the database); unset: no limit.",
        ),
    ] = None
    user_tokens_per_day: Annotated[
        int | None,
        Field(
            gt=0,
            description="Prompt and reply tokens one person may use per UTC day; unset: no limit.",
        ),
    ] = None
    limits_exempt_admins: Annotated[
        bool,
        Field(description="Admins are not held to the per-person limits."),
    ] = False
    max_concurrent_replies: Annotated[
        int | None,
        Field(
            gt=0,
            description="Model requests in flight at once in this process; more wait their "
            "turn (in order per conversation). Unset: no cap.",
        ),
    ] = None
    prices: Annotated[
        Path | None,
        Field(
            description="TOML file with a table per model: `input` and `output` price per "
            "million tokens, for the cost in `parley usage` and `/usage`.",
        ),
    ] = None
    blocked_words: Annotated[
        Path | None,
        Field(
            description="Word list file (one word or phrase per line, any case, Korean too): "
            "messages containing one are refused without asking the model.",
        ),
    ] = None
    moderation: Annotated[
        Literal["off", "endpoint"],
        Field(
            description="endpoint: check messages with the endpoint's /v1/moderations first; "
            "flagged ones are refused without asking the model.",
        ),
    ] = "off"
    moderation_model: Annotated[
        str | None,
        Field(description="Model for /v1/moderations; unset: the endpoint's default."),
    ] = None
    moderate_replies: Annotated[
        bool,
        Field(
            description="Check replies the same way before showing them (they are then shown "
            "whole, not streamed).",
        ),
    ] = False
    moderation_fail: Annotated[
        Literal["open", "closed"],
        Field(
            description="When the moderation endpoint fails: open answers anyway, closed refuses "
            "(logged either way).",
        ),
    ] = "open"

    # Replies on chat platforms
    stream_interval: Annotated[
        float,
        Field(
            ge=0.2,
            description="Seconds between edits of a streamed reply on Discord and Slack.",
        ),
    ] = 1.0

    # Attachments (every platform)
    attachment_max_bytes: Annotated[
        int,
        Field(
            gt=0,
            description="Largest attachment downloaded; text files up to this size are read "
            "into the message, larger files are skipped (the person is told).",
        ),
    ] = 1_000_000
    vision: Annotated[
        bool,
        Field(
            description="The model accepts images: send image attachments with the message.",
        ),
    ] = False

    # Discord
    discord_token: Annotated[
        str | None,
        Field(
            validation_alias=_alias("DISCORD_TOKEN", "discord_token"),
            description="Discord bot token; setting it makes `parley run` start the Discord bot.",
        ),
    ] = None
    discord_guilds: Annotated[
        IdList,
        Field(
            description="Only these server (guild) ids, comma-separated; empty: every server.",
        ),
    ] = frozenset()
    discord_channels: Annotated[
        IdList,
        Field(
            description=(
                "Only these channel ids (a thread counts as its parent channel); empty: all."
            ),
        ),
    ] = frozenset()
    discord_roles: Annotated[
        IdList,
        Field(
            description="Only members with one of these role ids or names (or a listed user); "
            "empty: everyone.",
        ),
    ] = frozenset()
    discord_users: Annotated[
        IdList,
        Field(
            description="Only these user ids (or members with a listed role); empty: everyone.",
        ),
    ] = frozenset()
    discord_admin_roles: Annotated[
        IdList,
        Field(
            description="Role ids or names allowed to use admin commands (/reset, /persona set), "
            "besides members with Manage Server or Administrator.",
        ),
    ] = frozenset()
    discord_answer_all_channels: Annotated[
        IdList,
        Field(
            description="Channel ids where Parley answers every message, no @mention needed.",
        ),
    ] = frozenset()
    discord_sync_commands: Annotated[
        bool,
        Field(
            description="Register the slash commands with Discord at start-up (or run "
            "`parley discord sync` once).",
        ),
    ] = False

    # Web search
    search_provider: Annotated[
        Literal["off", "searxng", "tavily", "brave", "duckduckgo"],
        Field(
            description="Web search provider; off disables search.",
        ),
    ] = "off"
    search_url: Annotated[
        str | None,
        Field(
            description="Base URL of the search API (required for searxng; tavily and brave have "
            "a default).",
        ),
    ] = None
    search_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds to wait for the search provider.",
        ),
    ] = 10.0
    search_mode: Annotated[
        Literal["tool", "always"],
        Field(
            description="tool: the model decides when to search (needs function calling); "
            "always: search on every message (for endpoints without tool support).",
        ),
    ] = "tool"
    search_max_calls: Annotated[
        int,
        Field(
            ge=1,
            le=10,
            description="Most searches the model may run for one reply.",
        ),
    ] = 3
    search_results: Annotated[
        int,
        Field(
            ge=1,
            le=20,
            description="Results asked of the provider per search.",
        ),
    ] = 5
    search_tokens: Annotated[
        int,
        Field(
            gt=0,
            description="Tokens of a prompt kept for search results (at most a third of "
            "what the conversation could use).",
        ),
    ] = 2000
    search_read_pages: Annotated[
        int,
        Field(
            ge=0,
            le=5,
            description="How many top results to open and read (0: snippets only).",
        ),
    ] = 2
    search_page_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds to wait for one result page.",
        ),
    ] = 5.0
    search_page_bytes: Annotated[
        int,
        Field(
            gt=0,
            description="Most bytes read from one result page.",
        ),
    ] = 2_000_000
    search_allow_private: Annotated[
        bool,
        Field(
            description="Let result pages on private, loopback or link-local addresses be fetched "
            "(only for an intranet search engine you trust).",
        ),
    ] = False
    tavily_api_key: Annotated[
        str | None,
        Field(
            validation_alias=_alias("TAVILY_API_KEY", "tavily_api_key"),
            description="API key for Tavily search.",
        ),
    ] = None
    brave_api_key: Annotated[
        str | None,
        Field(
            validation_alias=_alias("BRAVE_API_KEY", "brave_api_key"),
            description="API key for Brave search.",
        ),
    ] = None
    # Slack
    slack_bot_token: Annotated[
        str | None,
        Field(
            validation_alias=_alias("SLACK_BOT_TOKEN", "slack_bot_token"),
            description="Slack bot token (xoxb-…); setting it enables Slack in `parley run`.",
        ),
    ] = None
    slack_app_token: Annotated[
        str | None,
        Field(
            validation_alias=_alias("SLACK_APP_TOKEN", "slack_app_token"),
            description="Slack app-level token (xapp-…): use Socket Mode (no public URL needed).",
        ),
    ] = None
    slack_signing_secret: Annotated[
        str | None,
        Field(
            validation_alias=_alias("SLACK_SIGNING_SECRET", "slack_signing_secret"),
            description="Slack signing secret: use HTTP mode (events at /slack/events) when no app "
            "token is set.",
        ),
    ] = None
    slack_port: Annotated[
        int,
        Field(
            validation_alias=_alias("SLACK_PORT", "slack_port"),
            ge=0,
            le=65535,
            description="Port of the Slack HTTP-mode endpoint.",
        ),
    ] = 3000
    slack_host: Annotated[
        str,
        Field(
            description="Address the Slack HTTP-mode endpoint listens on.",
        ),
    ] = "0.0.0.0"
    slack_api_url: Annotated[
        str,
        Field(
            validation_alias=_alias("SLACK_API_URL", "slack_api_url"),
            description="Slack Web API base URL (e.g. for GovSlack); a trailing / is added.",
        ),
    ] = "https://slack.com/api/"
    slack_allowed_channels: Annotated[
        IdList,
        Field(
            description="Comma-separated channel ids Parley answers in; empty: every channel it is "
            "in. DMs are governed by the user list only.",
        ),
    ] = frozenset()
    slack_allowed_users: Annotated[
        IdList,
        Field(
            description="Comma-separated user ids Parley answers; empty: everyone.",
        ),
    ] = frozenset()
    slack_admin_users: Annotated[
        IdList,
        Field(
            description="Comma-separated user ids allowed to /reset and change the persona in "
            "channels (in a DM the person is always admin of it).",
        ),
    ] = frozenset()
    slack_answer_channels: Annotated[
        IdList,
        Field(
            description="Comma-separated channel ids where every message is answered, no mention "
            "needed.",
        ),
    ] = frozenset()

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    # Operations: logs, metrics, shutdown, platform API endpoints
    log_format: Annotated[
        Literal["plain", "json"],
        Field(
            description="Log line format: plain text or one JSON object per line.",
        ),
    ] = "plain"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        Field(
            description="Lowest log level written (`parley chat` defaults to WARNING).",
        ),
    ] = "INFO"
    metrics_port: Annotated[
        int | None,
        Field(
            ge=0,
            le=65535,
            description="Port for /healthz and Prometheus /metrics in `parley run`; "
            "off when unset (0: any free port).",
        ),
    ] = None
    metrics_host: Annotated[
        str,
        Field(
            description="Address the metrics server listens on (0.0.0.0 in containers).",
        ),
    ] = "127.0.0.1"
    shutdown_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds to let replies in progress finish on SIGTERM before "
            "cancelling them.",
        ),
    ] = 20.0
    discord_api_url: Annotated[
        str,
        Field(
            description="Discord REST API base URL (used by `parley doctor`).",
        ),
    ] = DEFAULT_DISCORD_API_URL
    locale: Annotated[
        Literal["en", "ko"],
        Field(
            description="Language of everything Parley says: en (English) or ko (Korean).",
        ),
    ] = "en"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

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


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
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
        name = env_name(field) if field in Settings.model_fields else field
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from exc
    use_locale(settings.locale)  # every command loads settings here: say() follows from now on
    if settings.uses_default_endpoint and not settings.openai_api_key:
        raise ConfigError(say("config.no_api_key"))
    problem = search_problem(settings)
    if problem:
        raise ConfigError(problem)
    if settings.slack_bot_token and not (settings.slack_app_token or settings.slack_signing_secret):
        raise ConfigError(say("config.slack_mode"))
    return settings
