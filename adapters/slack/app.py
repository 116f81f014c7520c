"""The Slack adapter: a bolt `AsyncApp` served over Socket Mode or HTTP."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import PLATFORM
from adapters.slack.listeners import SlackListeners
from adapters.slack.settings import SlackSettings
from adapters.slack.transports import HttpTransport, SocketModeTransport, Transport
from bot.core import Parley
from bot.settings import ConfigError
from bot.texts import say

log = logging.getLogger(__name__)

# Retries of a rate-limited Web API call, each after the Retry-After Slack asks for.
_RATE_LIMIT_RETRIES = 3


class SlackAdapter:
    name = "slack"

    def __init__(self, section: SlackSettings) -> None:
        if not section.slack_bot_token:
            raise ValueError("SlackAdapter needs SLACK_BOT_TOKEN")
        self.settings = section
        self.token = section.slack_bot_token
        self.address = ""  # where Slack reaches us, once serving
        self.ready = asyncio.Event()

    async def run(self, parley: Parley) -> None:
        settings = self.settings
        client = AsyncWebClient(
            token=self.token,
            base_url=settings.slack_api_url,
            retry_handlers=[
                *async_default_handlers(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=_RATE_LIMIT_RETRIES),
            ],
        )
        try:
            identity = await client.auth_test()
        except SlackApiError as exc:
            log.error(
                "Slack rejected SLACK_BOT_TOKEN (%s): Slack is not started",
                exc.response.get("error"),
            )
            return
        except (aiohttp.ClientError, OSError) as exc:
            raise ConfigError(
                say("slack.unreachable", url=settings.slack_api_url, error=exc)
            ) from exc
        # Events are acknowledged once their listener returned, i.e. once they are stored.
        app = AsyncApp(
            client=client,
            signing_secret=settings.slack_signing_secret or "",
            process_before_response=True,
        )
        listeners = SlackListeners(parley, client, str(identity["user_id"]))
        # Serving first ends the claims of this host's stopped processes, so what they left
        # half-shown is mended now, not once their leases run out.
        await parley.pipeline.serve(PLATFORM, listeners)
        await listeners.mend()
        listeners.register(app)
        await self._transport(app).serve(self._serving)

    def _transport(self, app: AsyncApp) -> Transport:
        if self.settings.slack_app_token:
            return SocketModeTransport(app, self.settings.slack_app_token)
        return HttpTransport(
            app,
            self.settings.slack_host,
            self.settings.slack_port,
            self.settings.slack_signing_secret or "",
        )

    def _serving(self, address: str) -> None:
        log.info("Slack is serving: %s", address)
        self.address = address
        self.ready.set()
