"""Logging: plain or JSON lines, one line per handled message, and secrets redacted.

The redaction is a safety net over the whole formatted line (message, extra fields and
tracebacks): code should never log a secret, but a library's exception text might carry one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.messages import Inbound
from bot.observe import ReplyReport
from bot.redact import redact
from bot.settings import Settings

log = logging.getLogger("parley.replies")

OWN_LOGGERS = ("bot", "memory", "adapters", "parley")
# Attributes every LogRecord has; anything else came from `extra=` and goes into JSON lines.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        return redact(text, self._secrets)


def settings_secrets(settings: Settings) -> list[str]:
    """The credentials of the core's settings and of every adapter's section."""
    return [secret for section in (settings, *settings.sections()) for secret in section.secrets()]


class PlainFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, traceback."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD_ATTRS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(settings: Settings, quiet: bool = False) -> None:
    """Send logs to stderr in the configured format. `quiet` (the terminal chat) shows only
    warnings unless PARLEY_LOG_LEVEL is set explicitly."""
    redact = Redactor(settings_secrets(settings))
    handler = logging.StreamHandler(sys.stderr)
    json_lines = settings.log_format == "json"
    handler.setFormatter(JsonFormatter(redact) if json_lines else PlainFormatter(redact))
    explicit = "log_level" in settings.model_fields_set
    level = logging.getLevelName("WARNING" if quiet and not explicit else settings.log_level)
    # Libraries log request bodies and SQL parameters (message text) at DEBUG: only Parley's
    # own loggers go below INFO.
    logging.basicConfig(level=max(level, logging.INFO), handlers=[handler], force=True)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


class ReplyLog:
    """The per-message log line (a ReplyObserver)."""

    def reply_started(self, message: Inbound) -> None:
        """Only finished replies are logged."""

    def reply_finished(self, report: ReplyReport) -> None:
        usage = report.usage
        fields = {
            "conversation": str(report.key),
            "message_id": report.message_id,
            "outcome": report.outcome,
            "latency_ms": round(report.seconds * 1000),
            "first_token_ms": None
            if report.first_token_seconds is None
            else round(report.first_token_seconds * 1000),
            "prompt_tokens": usage.prompt if usage else None,
            "reply_tokens": usage.reply if usage else None,
        }
        shown = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        log.info("reply %s", shown, extra=fields)
