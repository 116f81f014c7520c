"""A Slack `Surface` for `bot.streaming.deliver`: chat.postMessage, then chat.update.

Rate limits are honoured by the client's retry handler (it waits Retry-After and repeats the
call). Each message the renderer asks for is converted to mrkdwn; if that no longer fits Slack's
limit (escaping grows text) it is posted as several Slack messages.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.mrkdwn import to_mrkdwn
from bot.splitting import split_message

log = logging.getLogger(__name__)

# Slack rejects text much over 4,000 characters (`msg_too_long`) despite documenting 40,000.
SLACK_MAX_CHARS = 4000
# What the shared splitter aims for: headroom for the mrkdwn conversion.
SPLIT_LIMIT = 3000
# Below this, a refused message is not split further (something else is wrong).
_SMALLEST = 500


class SlackSurface:
    limit = SPLIT_LIMIT

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str = "") -> None:
        self.client = client
        self.channel = channel
        # Where a crash's left-overs are looked for: the channel, and the thread if any.
        self.place = f"{channel}/{thread_ts}" if thread_ts else channel
        self.thread_ts = thread_ts or None
        self.max_chars = SLACK_MAX_CHARS
        # The Slack ts of each part of each message posted so far.
        self._posted: list[list[str]] = []

    def posted_ids(self) -> list[str]:
        return [ts for parts in self._posted for ts in parts]

    async def send(self, text: str) -> None:
        self._posted.append([])
        await self._show(len(self._posted) - 1, text)

    async def edit(self, index: int, text: str) -> None:
        try:
            await self._show(index, text)
        except SlackApiError as exc:
            # The next edit (there is always a final one) shows the newer text anyway.
            log.warning(
                "could not update a reply in %s (thread %s): %s",
                self.channel,
                self.thread_ts,
                exc.response.get("error"),
            )

    async def delete(self, index: int) -> None:
        for ts in self._posted.pop(index):
            await self._delete(ts)

    async def _show(self, index: int, markdown: str) -> None:
        while True:
            try:
                await self._fill(self._posted[index], self._layout(markdown))
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "msg_too_long" or self.max_chars <= _SMALLEST:
                    raise
                self.max_chars = self.max_chars * 3 // 4
                log.info(
                    "Slack refused a message as too long; splitting at %d characters",
                    self.max_chars,
                )

    def _layout(self, markdown: str) -> list[str]:
        converted = to_mrkdwn(markdown)
        if len(converted) <= self.max_chars or len(markdown) < _SMALLEST:
            return [converted]
        return [
            part
            for piece in split_message(markdown, len(markdown) // 2)
            for part in self._layout(piece)
        ]

    async def _fill(self, posted: list[str], parts: list[str]) -> None:
        for number, part in enumerate(parts):
            if number < len(posted):
                await self.client.chat_update(channel=self.channel, ts=posted[number], text=part)
            else:
                response = await self.client.chat_postMessage(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    text=part,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                posted.append(str(response["ts"]))
        while len(posted) > len(parts):
            await self._delete(posted.pop())

    async def _delete(self, ts: str) -> None:
        try:
            await self.client.chat_delete(channel=self.channel, ts=ts)
        except SlackApiError as exc:
            log.warning(
                "could not delete message %s in %s: %s", ts, self.channel, exc.response.get("error")
            )
