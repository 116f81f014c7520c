"""Structured logs: one line per handled message (plain or JSON), secrets never written."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from bot.logs import JsonFormatter, PlainFormatter, Redactor
from bot.redact import REDACTED
from bot.settings import load_settings
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.helpers import until
from tests.process import finish, parley_env, start_parley

KEY = "sk-proj-Zq8veryS3cretKey0123456789"


async def chat_lines(
    fake_model: FakeModel, sqlite_url: str, lines: bytes, exit_code: int = 0, **env: str
) -> tuple[str, str]:
    process = await start_parley(
        "chat",
        "-c",
        "ops",
        stdin=asyncio.subprocess.PIPE,
        env=parley_env(
            OPENAI_BASE_URL=fake_model.base_url,
            OPENAI_API_KEY=KEY,
            PARLEY_DATABASE_URL=sqlite_url,
            **env,
        ),
    )
    assert process.stdin is not None
    process.stdin.write(lines)
    process.stdin.close()
    done = await finish(process)
    assert done.code == exit_code, done.stderr
    return done.stdout, done.stderr


async def test_json_line_per_message_and_no_secrets(fake_model: FakeModel, sqlite_url: str) -> None:
    # The endpoint echoes the key in an error: the redaction net must catch it.
    fake_model.script(Reply("hi there"), Fail(400, f"Bad key {KEY}"))
    _stdout, stderr = await chat_lines(
        fake_model,
        sqlite_url,
        b"hello\nagain\n",
        exit_code=1,  # the second reply failed
        PARLEY_LOG_FORMAT="json",
        PARLEY_LOG_LEVEL="info",
    )
    # stderr also carries the terminal's error text for the person; the log lines are JSON.
    logged = [line for line in stderr.splitlines() if line.startswith("{")]
    assert KEY not in "\n".join(logged) and REDACTED in "\n".join(logged)
    entries = [json.loads(line) for line in logged]
    replies = [e for e in entries if e["logger"] == "parley.replies"]
    assert [r["outcome"] for r in replies] == ["ok", "bad_request"]
    ok = replies[0]
    assert ok["conversation"] == "terminal/local/ops" and ok["level"] == "INFO"
    assert ok["latency_ms"] >= 0 and ok["first_token_ms"] <= ok["latency_ms"]
    assert ok["prompt_tokens"] > 0 and ok["reply_tokens"] == 2
    assert "hello" not in json.dumps(ok)  # message text is not logged
    assert replies[1]["prompt_tokens"] is None


async def test_plain_lines_and_quiet_chat_by_default(
    fake_model: FakeModel, sqlite_url: str
) -> None:
    _stdout, stderr = await chat_lines(fake_model, sqlite_url, b"hello\n", PARLEY_LOG_LEVEL="INFO")
    line = next(line for line in stderr.splitlines() if "parley.replies" in line)
    assert " INFO parley.replies: reply conversation=terminal/local/ops" in line
    assert "outcome=ok" in line and "reply_tokens=" in line
    _stdout, quiet = await chat_lines(fake_model, sqlite_url, b"hello\n")
    assert "parley.replies" not in quiet  # the terminal chat shows only warnings unless asked


def test_redactor_catches_known_shapes_and_configured_values() -> None:
    redact = Redactor(["my-custom-secret"])
    text = (
        "key sk-abcdefgh12345 slack xoxb-123-456-abc app xapp-1-A0-xyz "
        "Authorization: Bearer abc.def-ghijkl custom my-custom-secret "
        "discord MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123"
    )
    cleaned = redact(text)
    for secret in (
        "sk-abcdefgh12345",
        "xoxb-123",
        "xapp-1",
        "abc.def-ghijkl",
        "my-custom",
        "MTIzNDU2",
    ):
        assert secret not in cleaned
    assert (
        redact("conversation=discord/1/2 latency_ms=12") == "conversation=discord/1/2 latency_ms=12"
    )


def test_tracebacks_and_extra_fields_are_redacted() -> None:
    redact = Redactor([KEY])
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "oops %s", (KEY,), sys.exc_info(), extra={"token": KEY}
        )
    for formatter in (PlainFormatter(redact), JsonFormatter(redact)):
        assert KEY not in formatter.format(record)


def test_log_settings_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PARLEY_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"
    monkeypatch.setenv("PARLEY_LOG_FORMAT", "xml")
    with pytest.raises(Exception, match="PARLEY_LOG_FORMAT"):
        load_settings()


async def test_until_helper_times_out() -> None:
    with pytest.raises(TimeoutError):
        await until(lambda: False, within=0.05)
