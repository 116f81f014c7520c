"""Prometheus metrics and the /healthz + /metrics HTTP endpoints of `parley run`.

Each `Metrics` has its own registry (not prometheus-client's global one), so several cores,
e.g. in tests, never collide.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from bot.messages import ConversationKey, Inbound, Outcome
from bot.observe import ReplyReport

log = logging.getLogger(__name__)

# Outcomes that mean the model endpoint failed (as opposed to commands, empty messages…).
MODEL_ERRORS = frozenset(
    {
        Outcome.RATE_LIMITED,
        Outcome.QUOTA,
        Outcome.TIMEOUT,
        Outcome.INTERRUPTED,
        Outcome.UNREACHABLE,
        Outcome.AUTH,
        Outcome.MODEL_NOT_FOUND,
        Outcome.BAD_REQUEST,
        Outcome.SERVER_ERROR,
    }
)
_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
_FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


class Metrics:
    """Reply metrics (a ReplyObserver) in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "parley_messages",
            "Messages handled, by platform and outcome.",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.reply_seconds = Histogram(
            "parley_reply_seconds",
            "Time from a message to its finished reply.",
            ["platform"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token_seconds = Histogram(
            "parley_first_token_seconds",
            "Time from a message to the reply's first words.",
            ["platform"],
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.model_errors = Counter(
            "parley_model_errors",
            "Failed chat-API calls, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "parley_tokens",
            "Tokens sent to (prompt) and received from (reply) the model.",
            ["kind"],
            registry=self.registry,
        )
        self.model_tokens = Counter(
            "parley_model_tokens",
            "Tokens of every model call (replies, tool rounds, summaries, embeddings), by model "
            "and kind (prompt or reply).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.model_cost = Counter(
            "parley_model_cost",
            "Cost of the model calls by model, priced from PARLEY_PRICES (0 when unpriced).",
            ["model"],
            registry=self.registry,
        )
        self.active_conversations = Gauge(
            "parley_active_conversations",
            "Conversations with a reply being written now.",
            registry=self.registry,
        )
        self.missed = Gauge(
            "parley_messages_missed",
            "Stored messages found unanswered after PARLEY_RESUME_WINDOW by this process and "
            "marked missed (no reply), since it started.",
            registry=self.registry,
        )
        self._active: Tally[ConversationKey] = Tally()

    def reply_started(self, message: Inbound) -> None:
        self._active[message.key] += 1
        self.active_conversations.set(len(self._active))

    def reply_finished(self, report: ReplyReport) -> None:
        self._active[report.key] -= 1
        if self._active[report.key] <= 0:
            del self._active[report.key]
        self.active_conversations.set(len(self._active))
        platform = report.key.platform
        self.messages.labels(platform, report.outcome).inc()
        self.reply_seconds.labels(platform).observe(report.seconds)
        if report.first_token_seconds is not None:
            self.first_token_seconds.labels(platform).observe(report.first_token_seconds)
        if report.outcome in MODEL_ERRORS:
            self.model_errors.labels(report.outcome).inc()
        if report.usage is not None:
            self.tokens.labels("prompt").inc(report.usage.prompt)
            self.tokens.labels("reply").inc(report.usage.reply)

    def model_used(self, model: str, prompt_tokens: int, reply_tokens: int, cost: float) -> None:
        self.model_tokens.labels(model, "prompt").inc(prompt_tokens)
        self.model_tokens.labels(model, "reply").inc(reply_tokens)
        self.model_cost.labels(model).inc(cost)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


HealthProbe = Callable[[], Awaitable[str | None]]  # None when healthy, else what is wrong


def metrics_app(metrics: Metrics, health: HealthProbe) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        problem = await health()
        if problem is not None:
            return web.json_response({"status": "unhealthy", "problem": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def scrape(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    return app


@asynccontextmanager
async def serve_metrics(
    metrics: Metrics, health: HealthProbe, host: str, port: int
) -> AsyncIterator[int]:
    """Serve /healthz and /metrics while the block runs; yields the bound port."""
    runner = web.AppRunner(metrics_app(metrics, health), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        log.info("serving /healthz and /metrics on http://%s:%d", host, bound)
        yield bound
    finally:
        await runner.cleanup()


async def probe_healthz(host: str, port: int) -> str | None:
    """Ask a running Parley's /healthz: None when healthy, else what is wrong."""
    target = "127.0.0.1" if host in _ANY_ADDRESS else host
    url = f"http://{target}:{port}/healthz"
    try:
        async with aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as http, http.get(url) as response:
            if response.status == 200:
                return None
            return f"{url}: HTTP {response.status} {await response.text()}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{url}: {exc or type(exc).__name__}"
