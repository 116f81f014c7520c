"""Web search end to end: the real openai client against the fake model, real HTTP against the
fake search APIs, through the real core and store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bot.core import Parley
from bot.messages import Author, ConversationKey, Final, Inbound, Outcome
from bot.quoting import quoted_record
from bot.runtime import open_parley
from bot.settings import ConfigError, load_settings
from bot.texts import say
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel, Reply, prompt_tokens, tool_call
from tests.fakes.search_server import FakeSearch
from tests.helpers import is_quoted

KEY = ConversationKey("test", "w", "c")
ALICE = Author("u1", "Alice")

OpenSearch = Callable[..., AbstractAsyncContextManager[Parley]]


@pytest.fixture
def with_search(make_settings: SettingsFactory, fake_search: FakeSearch) -> OpenSearch:
    """A Parley searching the fake SearxNG (override any setting, e.g. the provider)."""

    def open_with(**overrides: object) -> AbstractAsyncContextManager[Parley]:
        values: dict[str, object] = {
            "search_provider": "searxng",
            "search_url": fake_search.base_url,
            "search_read_pages": 0,
        }
        return open_parley(make_settings(**{**values, **overrides}))

    return open_with


async def ask(parley: Parley, text: str, message_id: str | None = None) -> Final:
    final = None
    async for event in parley.reply(Inbound(KEY, ALICE, text, message_id)):
        if isinstance(event, Final):
            final = event
    assert final is not None
    return final


def search_for(query: str) -> Reply:
    return Reply("", tool_calls=[tool_call("web_search", {"query": query})])


def contents(request: dict[str, Any], role: str) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == role]


def quoted(request: dict[str, Any]) -> list[str]:
    """Outside text sent to the model: never as "system", always quoted."""
    assert contents(request, "system")[1:] == []  # the persona only
    return [m["content"] for m in request["messages"] if m["role"] != "system" and is_quoted(m)]


async def test_model_searches_and_answers_with_sources(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("Parley 2 released", "https://example.org/p2", "Parley 2 shipped in May.")
    fake_search.add("Changelog", "https://example.org/log", "Search, recall and more.")
    fake_model.script(
        search_for("parley 2 release date"),
        Reply("Parley 2 shipped in May [1]; it added search [2]."),
    )
    async with with_search() as parley:
        final = await ask(parley, "When did Parley 2 come out?")

        assert final.outcome is Outcome.OK
        assert final.text.startswith("Parley 2 shipped in May [1]; it added search [2].")
        assert "Sources:\n[1] Parley 2 released — https://example.org/p2" in final.text
        assert final.sources == ("https://example.org/p2", "https://example.org/log")
        assert [r.query for r in fake_search.requests] == ["parley 2 release date"]
        first, second = fake_model.requests
        assert first["tools"][0]["function"]["name"] == "web_search"
        asked = second["messages"][-2]["tool_calls"][0]["function"]
        assert asked["arguments"] == '{"query": "parley 2 release date"}'
        result = second["messages"][-1]
        assert result["role"] == "tool" and result["tool_call_id"] == "call_1"
        assert (
            "[2] Changelog\nhttps://example.org/log\nSearch, recall and more." in result["content"]
        )

        # The search stays in the history, compactly, for follow-ups.
        conversation = await parley.store.conversation(KEY)
        stored = await parley.store.messages(conversation.id)
        assert [(m.role, m.author_id) for m in stored] == [
            ("user", "u1"),
            ("system", "web_search"),
            ("assistant", "parley"),
        ]
        assert stored[1].tokens == parley.counter.count(quoted_record(stored[1].content))
        assert stored[2].content == "Parley 2 shipped in May [1]; it added search [2]."

        fake_model.script(Reply("The second source lists search and recall."))
        await ask(parley, "What did the second source say?")
        follow_up = fake_model.requests[-1]
        assert any("[2] Changelog — https://example.org/log" in text for text in quoted(follow_up))


async def test_slash_search_forces_a_search(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("Tide tables", "https://example.org/tides", "High tide at 14:02.")
    fake_model.script(Reply("High tide is at 14:02 [1]."))
    async with with_search(
        search_provider="tavily", search_url=fake_search.base_url, tavily_api_key="tvly-test"
    ) as parley:
        assert "/search <query>" in (await ask(parley, "/help")).text
        final = await ask(parley, "/search tide times Brest")

    assert fake_search.requests[0].provider == "tavily"
    assert fake_search.requests[0].query == "tide times Brest"
    assert fake_search.requests[0].headers["Authorization"] == "Bearer tvly-test"
    request = fake_model.requests[-1]
    assert "tools" not in request
    assert any("High tide at 14:02." in text for text in quoted(request))
    assert contents(request, "user")[-1] == "[Alice] tide times Brest"
    assert final.sources == ("https://example.org/tides",)


async def test_always_mode_searches_every_message_without_tools(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("Weather", "https://example.org/w", "Sunny, 21 °C.")
    async with with_search(
        search_provider="brave",
        search_url=fake_search.base_url,
        brave_api_key="brave-key",
        search_mode="always",
    ) as parley:
        final = await ask(parley, "weather in Lyon?")

    assert fake_search.requests[0].provider == "brave"
    assert fake_search.requests[0].headers["X-Subscription-Token"] == "brave-key"
    assert "tools" not in fake_model.requests[0]
    assert any("Sunny, 21 °C." in text for text in quoted(fake_model.requests[0]))
    assert final.outcome is Outcome.OK and "https://example.org/w" in final.text


async def test_forced_search_that_fails_still_answers(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.status = 500
    fake_model.script(Reply("Probably sunny."))
    async with with_search(search_mode="always") as parley:
        final = await ask(parley, "weather?")
    assert final.text == f"Probably sunny.\n\n{say('search.unavailable')}"
    assert any("unavailable" in text for text in contents(fake_model.requests[0], "user"))
    conversation_roles = [m["role"] for m in fake_model.requests[0]["messages"]]
    assert conversation_roles == ["system", "user", "user"]  # only the persona is "system"


async def test_search_results_are_trimmed_to_the_window(
    make_settings: SettingsFactory, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    window = 1500
    fake_model.context_window = window
    for n in range(8):
        fake_search.add(f"Result {n}", fake_search.url(f"/page{n}"), "long snippet " * 60)
    fake_search.page(
        "/page0",
        "<html><body><article><p>" + "Main text here. " * 2000 + "</p></article></body></html>",
    )
    fake_model.script(search_for("anything"), Reply("Answer [1]."))
    settings = make_settings(
        search_provider="searxng",
        search_url=fake_search.base_url,
        search_allow_private=True,
        context_tokens=window,
        max_reply_tokens=200,
        search_tokens=5000,
        search_max_calls=1,
    )
    async with open_parley(settings) as parley:
        for n in range(6):  # history that would fill the window by itself
            await parley.record(Inbound(KEY, ALICE, f"note {n}: " + "words " * 150, f"m{n}"))
        final = await ask(parley, "What is new?")

    assert final.outcome is Outcome.OK, final.text
    assert fake_search.page_hits == ["/page0", "/page1"]
    for request in fake_model.requests:
        used = prompt_tokens(request["messages"], fake_model.counter, request.get("tools"))
        assert used + request["max_tokens"] <= window
    tool_result = fake_model.requests[-1]["messages"][-1]["content"]
    assert "[1] Result 0" in tool_result and "Text of [1]:\nMain text here." in tool_result


async def test_search_cap_per_reply(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("A", "https://example.org/a", "a")
    fake_model.script(
        search_for("one"),
        Reply(
            "",
            tool_calls=[
                tool_call("web_search", {"query": "two"}, "c2"),
                tool_call("web_search", {"query": "three"}, "c3"),
            ],
        ),
        Reply("Done [2]."),
    )
    async with with_search(search_max_calls=2) as parley:
        final = await ask(parley, "dig deep")

    assert [r.query for r in fake_search.requests] == ["one", "two"]
    assert [r.get("tool_choice") for r in fake_model.requests] == ["auto", "auto", "none"]
    refused = fake_model.requests[2]["messages"][-1]
    assert refused["tool_call_id"] == "c3"
    assert refused["content"].startswith("Not run: the limit of calls")
    # Numbers continue across searches in one reply: the second search's result is [2].
    assert final.text.startswith("Done [2].\n\nSources:\n[2] A — https://example.org/a")


@pytest.mark.parametrize("failure", ["down", "slow", "empty", "garbage"])
async def test_failed_search_never_breaks_the_reply(
    failure: str, with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("A", "https://example.org/a", "a")
    if failure == "down":
        fake_search.status = 503
    elif failure == "slow":
        fake_search.delay = 2.0
    elif failure == "empty":
        fake_search.results = []
    fake_model.script(search_for("news"), Reply("From what I know: nothing new."))
    overrides: dict[str, object] = {"search_timeout": 0.3}
    if failure == "garbage":  # an address that answers with a web page, not a search API
        fake_search.page("/not-an-api/search", "<html><body>Welcome!</body></html>")
        overrides["search_url"] = fake_search.url("/not-an-api")
    async with with_search(**overrides) as parley:
        final = await ask(parley, "any news?")

    assert final.outcome is Outcome.OK
    notice = say("search.empty", query="news") if failure == "empty" else say("search.unavailable")
    assert final.text == f"From what I know: nothing new.\n\n{notice}"
    assert final.sources == ()
    told = fake_model.requests[-1]["messages"][-1]["content"]
    assert told.startswith('Web search for "news"')


async def test_duckduckgo_offline_fails_fast_with_a_notice(
    make_settings: SettingsFactory, fake_model: FakeModel
) -> None:
    fake_model.script(search_for("news"), Reply("No search today."))
    async with open_parley(
        make_settings(search_provider="duckduckgo", search_timeout=3.0)
    ) as parley:
        final = await ask(parley, "news?")
    assert final.text == f"No search today.\n\n{say('search.unavailable')}"


async def test_private_result_urls_are_not_fetched(
    with_search: OpenSearch, fake_model: FakeModel, fake_search: FakeSearch
) -> None:
    fake_search.add("Loopback", fake_search.url("/secret"), "on 127.0.0.1")
    fake_search.add("Intranet", "http://10.1.2.3/admin", "on 10.0.0.0/8")
    fake_search.add("Named", f"http://localhost:{fake_search.port}/secret", "localhost")
    fake_search.page("/secret", "<html><body><p>internal secret</p></body></html>")
    fake_model.script(search_for("x"), Reply("ok [1]"))
    async with with_search(search_read_pages=3) as parley:
        final = await ask(parley, "search it")

    assert fake_search.page_hits == []
    assert "internal secret" not in fake_model.requests[-1]["messages"][-1]["content"]
    assert final.outcome is Outcome.OK


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"PARLEY_SEARCH_PROVIDER": "brave"}, "BRAVE_API_KEY"),
        ({"PARLEY_SEARCH_PROVIDER": "tavily"}, "TAVILY_API_KEY"),
        ({"PARLEY_SEARCH_PROVIDER": "searxng"}, "PARLEY_SEARCH_URL"),
        (
            {"PARLEY_SEARCH_PROVIDER": "duckduckgo", "PARLEY_SEARCH_URL": "http://x"},
            "PARLEY_SEARCH_URL",
        ),
    ],
)
def test_misconfigured_search_is_a_config_error(
    env: dict[str, str], missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=missing):
        load_settings()


async def test_search_off_by_default(parley: Parley, fake_model: FakeModel) -> None:
    await ask(parley, "hello")
    assert "tools" not in fake_model.requests[0]
    assert "search" not in (await ask(parley, "/help")).text


async def test_an_endpoint_without_function_calling_still_answers(
    with_search: OpenSearch, fake_model: FakeModel
) -> None:
    fake_model.script(
        Fail(400, "registry.ollama.ai/library/gemma:2b does not support tools"),
        Reply("Answered without tools."),
        Reply("Still fine."),
    )
    async with with_search() as parley:
        first = await ask(parley, "What's new?")
        second = await ask(parley, "And now?")
    assert (first.text, second.text) == ("Answered without tools.", "Still fine.")
    assert [("tools" in body) for body in fake_model.requests] == [True, False, False]
