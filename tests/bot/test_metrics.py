"""Prometheus metrics and /healthz: recorded from real replies, scraped over real HTTP, and
probed by the real `parley healthcheck` command."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.core import Parley
from bot.metrics import Metrics
from bot.runtime import metrics_server, open_parley
from tests.conftest import SettingsFactory
from tests.fakes.model_server import Fail, FakeModel, Reply
from tests.helpers import ask, until
from tests.process import parley_env, run_parley

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(metrics: Metrics) -> Samples:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_replies_are_counted_timed_and_costed(parley: Parley, fake_model: FakeModel) -> None:
    metrics = Metrics()
    parley.observers.append(metrics)
    fake_model.script(Reply("a fine answer"), Fail(429, retry_after=0))
    await ask(parley, "hello")
    await ask(parley, "again")
    await ask(parley, "/help")
    found = samples(metrics)
    assert found[("parley_messages_total", (("outcome", "ok"), ("platform", "test")))] == 1
    assert (
        found[("parley_messages_total", (("outcome", "rate_limited"), ("platform", "test")))] == 1
    )
    assert found[("parley_messages_total", (("outcome", "command"), ("platform", "test")))] == 1
    assert found[("parley_model_errors_total", (("kind", "rate_limited"),))] == 1
    assert found[("parley_reply_seconds_count", (("platform", "test"),))] == 3
    assert found[("parley_first_token_seconds_count", (("platform", "test"),))] == 1
    assert found[("parley_tokens_total", (("kind", "prompt"),))] > 10
    assert found[("parley_tokens_total", (("kind", "reply"),))] == parley.counter.count(
        "a fine answer"
    )
    assert found[("parley_active_conversations", ())] == 0


async def test_active_conversations_while_replying(parley: Parley, fake_model: FakeModel) -> None:
    metrics = Metrics()
    parley.observers.append(metrics)
    fake_model.script(Reply("slow", delay=0.3))
    replying = asyncio.create_task(ask(parley, "hello"))
    await until(lambda: fake_model.requests)
    assert samples(metrics)[("parley_active_conversations", ())] == 1
    await replying
    assert samples(metrics)[("parley_active_conversations", ())] == 0


async def test_two_cores_keep_separate_registries(make_settings: SettingsFactory) -> None:
    async with open_parley(make_settings()) as first:
        one, two = Metrics(), Metrics()
        first.observers.append(one)
        await ask(first, "hello")
    assert samples(one)[("parley_messages_total", (("outcome", "ok"), ("platform", "test")))] == 1
    assert ("parley_messages_total", (("outcome", "ok"), ("platform", "test"))) not in samples(two)


async def test_http_endpoints_and_healthcheck_command(make_settings: SettingsFactory) -> None:
    async with (
        open_parley(make_settings(metrics_port=0)) as parley,
        metrics_server(parley) as port,
        aiohttp.ClientSession() as http,
    ):
        assert port
        await ask(parley, "hello")
        parley.pipeline.missed = 2  # as a start-up that found two stale messages would count
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
            assert 'parley_messages_total{outcome="ok",platform="test"} 1.0' in text
            assert "parley_messages_missed 2.0" in text
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200 and await response.json() == {"status": "ok"}
        env = parley_env(OPENAI_API_KEY="sk-test", PARLEY_METRICS_PORT=str(port))
        healthy = await run_parley("healthcheck", env=env)
        assert healthy.code == 0, healthy.stderr

        await parley.gate.close(1)
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["problem"] == "shutting down"
        unhealthy = await run_parley("healthcheck", env=env)
        assert unhealthy.code == 1 and "shutting down" in unhealthy.stderr


async def test_metrics_off_by_default(parley: Parley) -> None:
    async with metrics_server(parley) as port:
        assert port is None
    assert len(parley.observers) == 1  # just the log line
    off = await run_parley("healthcheck", env=parley_env(OPENAI_API_KEY="sk-test"))
    assert off.code == 0 and "Metrics are off" in off.stdout
