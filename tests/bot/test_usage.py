"""Usage records of every model call (replies, tool rounds, summaries, embeddings), priced,
reported by `/usage`, `parley usage` and Prometheus — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from openai.types.chat import ChatCompletionFunctionToolParam
from sqlalchemy import text

from bot.core import Parley
from bot.local import terminal_author, terminal_key
from bot.metrics import Metrics
from bot.runtime import open_parley
from bot.settings import ConfigError
from bot.texts import say
from bot.tools import ToolResult
from bot.usage import Price, Prices, UsageMeter, priced
from bot.usage_report import render_report
from memory.usage import UsageRow
from tests.bot.test_metrics import samples
from tests.conftest import SettingsFactory
from tests.fakes.model_server import (
    Behaviour,
    BreakStream,
    FakeModel,
    Reply,
    echo,
    prompt_tokens,
    tool_call,
)
from tests.helpers import ALICE, BOB, GENERAL, ask, is_summary_request, parley_on
from tests.process import parley_env, run_parley

PRICES = '["gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n\n["emb"]\ninput = 0.02\n'


def prices_file(directory: Path) -> Path:
    path = directory / "prices.toml"
    path.write_text(PRICES, encoding="utf-8")
    return path


class Lookup:
    """A tool that answers at once, for a reply with a tool round."""

    name = "lookup"
    room = 100
    max_calls: int | None = 1
    definition: ClassVar[ChatCompletionFunctionToolParam] = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }

    def arguments_for(self, text: str) -> str:
        return "{}"

    async def run(self, arguments: str, budget: int, first_source: int) -> ToolResult:
        return ToolResult("found: 42", 4)


async def usage_rows(parley: Parley) -> list[dict[str, Any]]:
    async with parley.store.engine.connect() as connection:
        result = await connection.execute(text("SELECT * FROM usage ORDER BY id"))
        return [dict(row) for row in result.mappings()]


def _turn(number: int) -> str:
    return f"Message {number}: more details about the plans, the people, the budget and dates."


async def test_every_model_call_is_recorded(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str
) -> None:
    def model(body: dict[str, Any]) -> Behaviour:
        return Reply("A summary.") if is_summary_request(body) else echo(body)

    fake_model.default = model
    fake_model.script(Reply("", tool_calls=[tool_call("lookup", {})]), Reply("It is 42."))
    async with parley_on(
        make_settings, database_url, context_tokens=700, max_reply_tokens=64, embedding_model="emb"
    ) as parley:
        parley.tools["lookup"] = Lookup()
        assert (await ask(parley, "look it up", BOB)).text.startswith("It is 42.")
        parley.tools.clear()
        for number in range(16):
            await ask(parley, _turn(number), ALICE, GENERAL)
            await parley.drain()
        rows = await usage_rows(parley)

    kinds = {(row["user_id"], row["kind"]) for row in rows}
    assert {("u-bob", "reply"), ("u-bob", "tool"), ("u-alice", "summary")} <= kinds
    assert ("u-alice", "embedding") in kinds and ("u-bob", "embedding") in kinds
    chat = [row for row in rows if row["kind"] != "embedding"]
    requests = fake_model.requests
    assert sum(row["calls"] for row in chat) == len(requests)
    # The endpoint's own figures were recorded, not Parley's count.
    expected = sum(
        prompt_tokens(b["messages"], fake_model.counter, b.get("tools")) for b in requests
    )
    assert sum(row["prompt_tokens"] for row in chat) == expected
    assert sum(row["estimated_calls"] for row in rows) == 0
    embedded = sum(len(body["input"]) for body in fake_model.embedding_requests)
    assert sum(row["prompt_tokens"] for row in rows if row["kind"] == "embedding") == embedded
    assert all(row["conversation_id"] > 0 for row in rows)


async def test_parley_counts_when_the_endpoint_reports_nothing(
    make_settings: SettingsFactory, fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.report_usage = False
    fake_model.script(Reply("Hello there, Bob."))
    async with parley_on(make_settings, sqlite_url) as parley:
        await ask(parley, "hi", BOB)
        (row,) = await usage_rows(parley)
    body = fake_model.requests[0]
    assert body["stream_options"] == {"include_usage": True}
    assert row["estimated_calls"] == 1
    assert row["prompt_tokens"] == prompt_tokens(body["messages"], fake_model.counter)
    assert row["reply_tokens"] == fake_model.counter.count("Hello there, Bob.")


async def test_without_usage_reports_each_call_records_its_prompt_as_budgeted(
    make_settings: SettingsFactory, fake_model: FakeModel, sqlite_url: str
) -> None:
    # The prompt's count from when it was built (history, recall, a tool round's definitions,
    # calls and results) is recorded, and it is the count of what was sent.
    fake_model.report_usage = False
    fake_model.default = echo
    fake_model.script(
        Reply("Noted."),
        Reply("Noted again."),
        Reply("Let me see.", tool_calls=[tool_call("lookup", {})]),
        Reply("It is 42."),
    )
    async with parley_on(make_settings, sqlite_url) as parley:
        await ask(parley, "My sister Dana lives in Busan.", BOB)
        await ask(parley, _turn(1), BOB)
        parley.tools["lookup"] = Lookup()
        assert (await ask(parley, "Where does Dana live? look it up", BOB)).text.endswith("42.")
        rows = [row for row in await usage_rows(parley) if row["kind"] != "embedding"]
    sent: dict[str, int] = {"reply": 0, "tool": 0}
    for body in fake_model.requests:
        kind = "tool" if body["messages"][-1]["role"] == "tool" else "reply"
        sent[kind] += prompt_tokens(body["messages"], fake_model.counter, body.get("tools"))
    recorded = {row["kind"]: row for row in rows}
    assert sorted(recorded) == ["reply", "tool"]
    assert (recorded["reply"]["calls"], recorded["reply"]["estimated_calls"]) == (3, 3)
    assert (recorded["tool"]["calls"], recorded["tool"]["estimated_calls"]) == (1, 1)
    assert {kind: row["prompt_tokens"] for kind, row in recorded.items()} == sent


async def test_a_summary_without_usage_reports_is_recorded_from_the_stored_counts(
    make_settings: SettingsFactory, fake_model: FakeModel, sqlite_url: str
) -> None:
    # The transcript's messages carry their counts: the request is not tokenized again.
    fake_model.report_usage = False

    def model(body: dict[str, Any]) -> Behaviour:
        return Reply("A summary.") if is_summary_request(body) else echo(body)

    fake_model.default = model
    async with parley_on(make_settings, sqlite_url, context_tokens=700, max_reply_tokens=64) as p:
        for number in range(16):
            await ask(p, _turn(number), ALICE, GENERAL)
            await p.drain()
        rows = [row for row in await usage_rows(p) if row["kind"] == "summary"]
    sent = [
        prompt_tokens(body["messages"], fake_model.counter)
        for body in fake_model.requests
        if is_summary_request(body)
    ]
    assert sent and sum(row["calls"] for row in rows) == len(sent)
    assert sum(row["estimated_calls"] for row in rows) == len(sent)
    recorded = sum(row["prompt_tokens"] for row in rows)
    assert abs(recorded - sum(sent)) <= sum(sent) * 0.03, (recorded, sum(sent))


async def test_a_cut_stream_is_recorded_with_what_was_sent(
    make_settings: SettingsFactory, fake_model: FakeModel, sqlite_url: str
) -> None:
    fake_model.script(BreakStream("The first half of"))
    async with parley_on(make_settings, sqlite_url) as parley:
        assert (await ask(parley, "hi", BOB)).failed
        (row,) = await usage_rows(parley)
    assert (row["calls"], row["estimated_calls"]) == (1, 1)
    assert row["reply_tokens"] == fake_model.counter.count("The first half of")


async def test_usage_command_shows_own_figures_and_admins_the_channel(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str, tmp_path: Path
) -> None:
    prices = prices_file(tmp_path)
    fake_model.usage = (1_000_000, 100_000)
    # The fake's made-up usage must not teach the budget: counts are exact with a tokenizer.
    async with parley_on(
        make_settings,
        database_url,
        prices=prices,
        user_tokens_per_day=5_000_000,
        tokenizer="o200k_base",
    ) as parley:
        await ask(parley, "hi", BOB)
        await ask(parley, "hello", ALICE)
        own = (await ask(parley, "/usage", BOB)).text
        admin = (await ask(parley, "/usage", ALICE)).text

    assert "today (UTC): 1 messages, 1,100,000 tokens (1,000,000 prompt + 100,000 reply)" in own
    assert "cost 0.2100" in own  # 1M at 0.15 + 0.1M at 0.6 per million
    assert "Daily limit: 1,100,000 of 5,000,000 tokens used." in own
    assert "This channel" not in own and "u-alice" not in own
    assert "This channel, last 30 days, per person:" in admin
    assert "test:u-bob (Bob)" in admin and "test:u-alice (Alice)" in admin


async def test_model_tokens_and_cost_are_prometheus_counters(
    make_settings: SettingsFactory, fake_model: FakeModel, tmp_path: Path
) -> None:
    prices = prices_file(tmp_path)
    fake_model.usage = (2_000, 500)
    async with open_parley(make_settings(prices=prices)) as parley:
        metrics = Metrics()
        assert isinstance(parley.chat.meter, UsageMeter)
        parley.chat.meter.observers.append(metrics)
        await ask(parley, "hi", BOB)
    found = samples(metrics)
    model = ("model", "gpt-4o-mini")
    assert found[("parley_model_tokens_total", (("kind", "prompt"), model))] == 2_000
    assert found[("parley_model_tokens_total", (("kind", "reply"), model))] == 500
    assert found[("parley_model_cost_total", (model,))] == pytest.approx(0.0006)


@pytest.mark.parametrize("content", ['["gpt-4o-mini"]\ninput = "cheap"\n', "not toml ["])
async def test_a_bad_prices_file_is_a_configuration_error(
    make_settings: SettingsFactory, tmp_path: Path, content: str
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="PARLEY_PRICES"):
        async with open_parley(make_settings(prices=prices)):
            pass


async def test_usage_cli_reports_by_model_and_conversation(
    make_settings: SettingsFactory, fake_model: FakeModel, database_url: str, tmp_path: Path
) -> None:
    prices = prices_file(tmp_path)
    fake_model.usage = (1_000, 200)
    # The fake's made-up usage must not teach the budget: counts are exact with a tokenizer.
    async with parley_on(make_settings, database_url, tokenizer="o200k_base") as parley:
        for question in ("one", "two"):
            await ask(parley, question, terminal_author(), terminal_key("work"))
    env = parley_env(
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_model.base_url,
        PARLEY_DATABASE_URL=database_url,
        PARLEY_PRICES=str(prices),
    )
    by_model = await run_parley("usage", "--by", "model", "--format", "json", env=env)
    table = await run_parley("usage", "--by", "conversation", "--days", "1", env=env)

    assert by_model.code == 0, by_model.stderr
    (row,) = json.loads(by_model.stdout)
    assert row["key"] == "gpt-4o-mini"
    assert (row["messages"], row["prompt_tokens"], row["reply_tokens"]) == (2, 2_000, 400)
    assert row["cost"] == pytest.approx(2_000 * 0.15e-6 + 400 * 0.6e-6)
    header, first, total = table.stdout.splitlines()
    assert header.split() == ["key", "messages", "calls", "prompt_tokens", "reply_tokens", "cost"]
    assert first.split() == ["terminal/local/work", "2", "2", "2,000", "400", "0.0005"]
    assert total.split()[:5] == ["total", "2", "2", "2,000", "400"]


def _columns(text: str) -> int:
    return sum(2 if "\uac00" <= char <= "\ud7a3" else 1 for char in text)


def test_report_table_sums_models_per_key_and_aligns_korean_names() -> None:
    rows = [
        UsageRow("slack:U1", "gpt-4o-mini", 3, 4, 12_000, 800, 0, "Bob"),
        UsageRow("slack:U1", "emb", 0, 2, 300, 0, 0, "Bob"),
        UsageRow("discord:42", "gpt-4o-mini", 1, 1, 900, 50, 1, "민수"),
    ]
    prices = Prices({"gpt-4o-mini": Price(0.15, 0.6), "emb": Price(0.02, 0)})
    _header, bob, minsu, total, note = render_report(priced(rows, prices), "table").splitlines()
    assert bob.split() == ["slack:U1", "(Bob)", "3", "6", "12,300", "800", "0.0023"]
    assert total.split() == ["total", "4", "7", "13,200", "850", "0.0025"]
    # Hangul takes two columns: the numbers still line up.
    assert _columns(minsu.split("  1 ")[0]) == _columns(bob.split("  3 ")[0])
    assert note == say("usage.estimated", calls="1")
