"""No secrets in chat or logs: URL credentials and queries, search queries, the database
password and tokens stay out of what people see and what is logged."""

from __future__ import annotations

import logging

import pytest

from bot.logs import PlainFormatter, Redactor, settings_secrets
from bot.messages import Author, ConversationKey, Inbound
from bot.runtime import open_parley
from bot.settings import ConfigError, load_settings
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel, Reply, tool_call
from tests.fakes.search_server import FakeSearch
from tests.helpers import collect
from tests.process import parley_env, run_parley

LEAKY = "see http://admin:pw-in-url@10.0.0.5/debug?sig=SIGNED-QUERY for details"


async def test_chat_errors_and_debug_logs_carry_no_secrets(
    fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(Reply("Hi."), Fail(404, "no such model"), Fail(400, f"Bad: {LEAKY}"))
    base = fake_model.base_url.replace("http://", "http://parley:hunter2-pass@")
    done = await run_parley(
        "chat",
        env=parley_env(
            OPENAI_BASE_URL=base,
            OPENAI_API_KEY="sk-test-key-0123456789",
            PARLEY_DATABASE_URL=sqlite_url,
            PARLEY_MODEL_RETRIES="0",
            PARLEY_LOG_LEVEL="DEBUG",
        ),
        stdin="my rash is itchy\nhello\nagain\n",
    )

    # Libraries log request bodies and SQL parameters at DEBUG: they stay at INFO.
    assert "parley.replies" in done.stderr and "rash" not in done.stderr
    shown = done.stdout + done.stderr
    assert "was not found at" in shown and "refused the request" in shown
    for secret in ("hunter2-pass", "pw-in-url", "SIGNED-QUERY"):
        assert secret not in shown


async def test_search_queries_and_page_urls_are_never_logged(
    make_settings: SettingsFactory,
    fake_model: FakeModel,
    fake_search: FakeSearch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_search.add("Result", fake_search.url("/page?session=SIGNED-QUERY"), "snippet")
    fake_search.page("/page", "", status=500)
    query = "rash on my left elbow"
    fake_model.script(
        Reply("", tool_calls=[tool_call("web_search", {"query": query})]),
        Reply("Answer."),
        Reply("", tool_calls=[tool_call("web_search", {"query": query})]),
        Reply("Answer."),
    )
    settings = make_settings(
        search_provider="searxng", search_url=fake_search.base_url, search_allow_private=True
    )
    key, author = ConversationKey("test", "w", "c"), Author("u1", "Ann")
    async with open_parley(settings) as parley:
        await collect(parley, Inbound(key, author, "what is this rash?"))
        fake_search.status = 500  # the search itself fails now
        await collect(parley, Inbound(key, author, "and now?"))

    assert len(fake_search.requests) == 2 and fake_search.page_hits == ["/page"]
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("bot", "memory", "parley"))
    )
    assert "web search via searxng failed" in ours and "not reading a result page" in ours
    assert "rash" not in ours and "SIGNED-QUERY" not in ours


def test_database_password_and_tokens_are_redacted(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        database_url="postgresql+asyncpg://parley:db-pass-77@db.internal/parley",
        discord_token="discord-token-value",
    )
    record = logging.makeLogRecord(
        {"msg": "connect failed: password db-pass-77 for %r", "args": (settings,)}
    )
    line = PlainFormatter(Redactor(settings_secrets(settings))).format(record)

    assert "db-pass-77" not in line and "discord-token-value" not in line
    assert "db-pass-77" not in repr(settings) and "discord-token-value" not in repr(settings)


def test_config_errors_do_not_echo_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            openai_api_key="sk-x", openai_base_url="http://u:pw-x@h/v1", request_timeout="soon"
        )
    assert "soon" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(openai_api_key=["not", "a", "string-secret-value"])
    assert "string-secret-value" not in str(caught.value)
