"""What kind of channel a Slack channel id is: message events say (`channel_type`); for the
others (app_mention) Slack is asked once with conversations.info. Kept for a bounded number."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import KINDS
from bot.messages import ChannelKind

log = logging.getLogger(__name__)

_KEPT = 10_000


class ChannelKinds:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._known: dict[str, ChannelKind] = {}

    async def of(self, channel: str, channel_type: str | None = None) -> ChannelKind:
        if channel_type in KINDS:
            kind = KINDS[channel_type]
        elif channel.startswith("D"):
            return ChannelKind.DM
        elif channel in self._known:
            return self._known[channel]
        else:
            kind = await self._look_up(channel)
        self._remember(channel, kind)
        return kind

    def _remember(self, channel: str, kind: ChannelKind) -> None:
        if channel not in self._known and len(self._known) >= _KEPT:
            self._known.pop(next(iter(self._known)))
        self._known[channel] = kind

    async def _look_up(self, channel: str) -> ChannelKind:
        try:
            info = (await self.client.conversations_info(channel=channel))["channel"]
        except SlackApiError as exc:
            # Usually a missing channels:read / groups:read scope: treated as private.
            log.warning(
                "conversations.info failed for %s (%s): its kind is unknown",
                channel,
                exc.response.get("error"),
            )
            return ChannelKind.UNKNOWN
        if info.get("is_im"):
            return ChannelKind.DM
        if info.get("is_mpim"):
            return ChannelKind.GROUP_DM
        return ChannelKind.PRIVATE if info.get("is_private") else ChannelKind.CHANNEL
