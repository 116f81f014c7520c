"""Configuration: environment variables, a `.env` file and an optional `parley.toml`.

Environment variables win over `.env`, which wins over `parley.toml` (keys are the field names,
e.g. `model = "gpt-4o"`); `bot.config_files` finds both files. Each field's description feeds
`parley --help` texts and README.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.config_checks import settings_problem
from bot.config_files import env_file_names, env_path, read_toml, toml_path, unknown_names
from bot.mcp.config import mcp_config_problem
from bot.redact import REDACTED, strip_url_secrets
from bot.search.config import search_problem
from bot.texts import has_text, say, use_locale
from memory.tokens import BUNDLED_ENCODINGS

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


def env_alias(env: str, field: str) -> AliasChoices:
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
# Whole numbers written the same way ("0,1" or a toml list).
NumberList = Annotated[tuple[int, ...], NoDecode, BeforeValidator(_comma_separated)]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parley"


class SettingsSection(BaseSettings):
    """A group of settings read from the same sources: the core's (`Settings`) or an adapter's
    (each adapter plug-in declares its own section; see `bot.plugins`)."""

    model_config = SettingsConfigDict(
        env_prefix="PARLEY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            DotEnvSettingsSource(settings_cls, env_file=env_path()),
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path()),
        )

    def problem(self) -> str | None:
        """What is wrong with a combination of settings (one line), if anything."""
        return None

    def secrets(self) -> list[str]:
        """The credentials set here (redacted from logs and error texts)."""
        values = (getattr(self, name) for name in type(self).model_fields if is_secret(name))
        return [str(value) for value in values if value]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Settings end up in tracebacks and debug output: never with a credential in them.
        for name, value in super().__repr_args__():
            if name and value and is_secret(name):
                value = REDACTED
            elif name and isinstance(value, str) and name.endswith("_url"):
                value = strip_url_secrets(value)
            yield name, value


def is_secret(field: str) -> bool:
    """Credentials, by naming convention, so a new provider's key is never written to
    parley.toml and always redacted."""
    return field.endswith(("_api_key", "_token", "_secret"))


Section = TypeVar("Section", bound=SettingsSection)


class Settings(SettingsSection):
    """The core's settings; each adapter's section is attached (`section`)."""

    # The chat API
    openai_api_key: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("OPENAI_API_KEY", "openai_api_key"),
            description=(
                "API key for the chat endpoint (optional for local servers such as Ollama)."
            ),
        ),
    ] = None
    openai_base_url: Annotated[
        str,
        Field(
            validation_alias=env_alias("OPENAI_BASE_URL", "openai_base_url"),
            description="Base URL of the OpenAI-compatible API, e.g. http://localhost:11434/v1.",
        ),
    ] = DEFAULT_OPENAI_URL
    model: Annotated[str, Field(description="Chat model name.")] = "gpt-4o-mini"
    context_tokens: Annotated[
        int | None,
        Field(
            gt=256,
            description="Context window in tokens; default: what the server reports "
            "(llama.cpp, vLLM, Ollama), else the known-models table, else 2048.",
        ),
    ] = None
    tokenizer: Annotated[
        str | None,
        Field(
            description="The model's tokenizer, for exact budgets: a tokenizer.json file or a "
            "tiktoken encoding (o200k_base, cl100k_base). Default: the server's /tokenize "
            "where it has one, else counts calibrated from the server's usage reports.",
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
            description="Retries of a failed chat call (429, 5xx, connection) with backoff; "
            "timeouts too against OpenAI itself (a local server still computes the first try).",
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
            description="Where recall may look: this conversation only, or also the public "
            "channels of the same workspace (server / Slack team); never DMs or private channels.",
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
    reply_workers: Annotated[
        int,
        Field(
            gt=0,
            le=1000,
            description="Stored messages this process answers at once (each conversation one "
            "at a time, in order); more wait in the database.",
        ),
    ] = 16
    resume_window: Annotated[
        float,
        Field(
            ge=0,
            description="Seconds after which a message left unanswered by a crash or stop is "
            "marked missed at start instead of answered late.",
        ),
    ] = 600.0
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
    document_max_pages: Annotated[
        int,
        Field(gt=0, description="Pages of a shared PDF read at most (the person is told)."),
    ] = 200
    document_max_chars: Annotated[
        int,
        Field(gt=0, description="Characters of a shared document's text kept at most."),
    ] = 2_000_000
    document_max_passages: Annotated[
        int,
        Field(gt=0, description="Recallable passages kept per shared document at most."),
    ] = 2_000
    document_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds a PDF may take to read (in a separate process, stopped then).",
        ),
    ] = 60.0
    vision: Annotated[
        bool,
        Field(
            description="The model accepts images: send image attachments with the message.",
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
            validation_alias=env_alias("TAVILY_API_KEY", "tavily_api_key"),
            description="API key for Tavily search.",
        ),
    ] = None
    brave_api_key: Annotated[
        str | None,
        Field(
            validation_alias=env_alias("BRAVE_API_KEY", "brave_api_key"),
            description="API key for Brave search.",
        ),
    ] = None
    # Tools from MCP servers (and limits shared with web search)
    mcp_config: Annotated[
        Path | None,
        Field(
            description="JSON file of MCP servers whose tools the model may call, in the common "
            'client format `{"mcpServers": {"name": {"command", "args", "env"} or {"url", '
            '"headers"}}}`, optionally with "tools" (allow-list) and "admin_only" per server.',
        ),
    ] = None
    tool_timeout: Annotated[
        float,
        Field(
            gt=0,
            description="Seconds an MCP tool call may take before it counts as failed (starting "
            "a server may take this long, and at least 15 s).",
        ),
    ] = 30.0
    tool_rounds: Annotated[
        int,
        Field(
            ge=1,
            le=20,
            description="Most rounds of tool calls (web search, MCP) the model may make for one "
            "reply before it must answer.",
        ),
    ] = 4
    tool_tokens: Annotated[
        int,
        Field(
            gt=0,
            description="Most tokens of a prompt one MCP tool result may take (longer results are "
            "cut, with a marker).",
        ),
    ] = 2000

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_exists(cls, value: str | None) -> str | None:
        if value and value not in BUNDLED_ENCODINGS and not Path(value).is_file():
            raise ValueError(f"not a file and not one of {', '.join(BUNDLED_ENCODINGS)}: {value}")
        return value

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

    _sections: dict[type[SettingsSection], SettingsSection] = PrivateAttr(default_factory=dict)

    def section(self, kind: type[Section]) -> Section:
        """An adapter's settings: the attached ones (`load_settings` attaches every installed
        adapter's), else read from the same sources now."""
        found = self._sections.get(kind)
        if not isinstance(found, kind):
            found = load_section(kind)
            self._sections[kind] = found
        return found

    def attach(self, *sections: SettingsSection) -> Settings:
        for section in sections:
            self._sections[type(section)] = section
        return self

    def sections(self) -> list[SettingsSection]:
        return list(self._sections.values())

    def problem(self) -> str | None:
        if self.uses_default_endpoint and not self.openai_api_key:
            return say("config.no_api_key")
        return search_problem(self) or mcp_config_problem(self.mcp_config)

    def secrets(self) -> list[str]:
        """Also the database password: drivers and tracebacks can show the URL."""
        found = super().secrets()
        password = urlsplit(self.database_url).password if self.database_url else None
        if password:
            found += [password, unquote(password)]
        return found

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"

    @property
    def uses_default_endpoint(self) -> bool:
        return self.openai_base_url.rstrip("/") == DEFAULT_OPENAI_URL


class ConfigError(Exception):
    """A setting is missing or invalid; the message says what to set."""


def env_name(field: str, kind: type[SettingsSection] | None = None) -> str:
    """The environment variable that sets `field` (of the core's settings by default)."""
    alias = (kind or Settings).model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"PARLEY_{field.upper()}"


def _invalid(error: ErrorDetails, kind: type[SettingsSection]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = env_name(field, kind) if field in kind.model_fields else field
    key = f"config.type.{error['type']}"
    problem = say(key, **error.get("ctx", {})) if has_text(key) else error["msg"]
    shown = REDACTED if is_secret(field) else strip_url_secrets(repr(error.get("input")))
    return say("config.invalid", name=name, problem=problem, got=shown)


def _validated(kind: type[Section], overrides: dict[str, object]) -> Section:
    path = toml_path()
    try:
        return kind(**overrides)
    except ValidationError as exc:
        raise ConfigError(_invalid(exc.errors()[0], kind)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(say("config.toml_syntax", path=path, error=exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(say("config.unreadable", path=path or ".env", error=exc)) from exc


def locale_from_environment() -> None:
    """Follow PARLEY_LOCALE before (or without) loading the settings."""
    chosen = os.environ.get("PARLEY_LOCALE", "").lower()
    if chosen == "ko":
        use_locale("ko")


def setting_names(kinds: list[type[SettingsSection]]) -> dict[str, list[str]]:
    """Each setting and the environment variable that sets it (an aliased field, such as
    OPENAI_API_KEY, has no PARLEY_ name)."""
    return {field: [env_name(field, kind)] for kind in kinds for field in kind.model_fields}


def config_warnings(kinds: list[type[SettingsSection]]) -> list[str]:
    """Unknown PARLEY_* variables (environment and .env) and parley.toml keys, with the closest
    known name: a typo would otherwise be silently ignored."""
    path = toml_path()
    keys = list(read_toml(path)) if path is not None and path.is_file() else []
    env = [*os.environ, *env_file_names(env_path())]
    return [
        say("config.unknown_close" if close else "config.unknown", name=name, close=close)
        for name, close in unknown_names(env, keys, setting_names(kinds))
    ]


def _checked(section: Section) -> Section:
    problem = section.problem()
    if problem:
        raise ConfigError(problem)
    return section


def load_section(kind: type[Section], **overrides: object) -> Section:
    """One section from the environment, `.env` and `parley.toml`, or a one-line ConfigError."""
    return _checked(_validated(kind, overrides))


def load_settings(**overrides: object) -> Settings:
    """The core's settings and every installed adapter's section (see `bot.plugins`), or a
    one-line ConfigError."""
    from bot.plugins import discover  # the plug-ins' modules import this one

    locale_from_environment()  # so that a mistake found while loading is told in that language
    settings = _validated(Settings, overrides)
    use_locale(settings.locale)  # every command loads settings here: say() follows from now on
    plugins = discover()
    for warning in config_warnings([Settings, *(plugin.section for plugin in plugins)]):
        print(warning, file=sys.stderr)
    problem = settings_problem(settings)
    if problem:
        raise ConfigError(problem)
    _checked(settings)
    return settings.attach(*(load_section(plugin.section) for plugin in plugins))
