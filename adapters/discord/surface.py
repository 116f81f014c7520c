"""Where `bot.streaming.deliver` shows a reply on Discord: channel messages (the first one a
reply to the triggering message) or a slash command's deferred response and its follow-ups.

Nothing posted pings anyone (`allowed_mentions` is empty) or unfurls a link the model wrote:
messages carry the suppress-embeds flag, and the deferred response, whose edits cannot set
flags, gets its links wrapped in `<…>` (Discord's own "no preview" form).
"""

from __future__ import annotations

import re
from typing import Any

import discord

LIMIT = 2000
_NO_PINGS = discord.AllowedMentions.none()
# The deferred response in a webhook message path (`messages/@original`), where discord.py types
# an id.
_ORIGINAL: Any = "@original"
# Outside code: a Markdown link's target, or a bare URL (neither already in <…>).
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_URL = re.compile(
    r"(?<!<)(https?://(?:[^\s<>()]|\([^\s<>()]*\))*(?:[^\s<>().,;:!?'\"*_~]|\([^\s<>()]*\)))"
)


def without_previews(text: str, limit: int = LIMIT) -> str:
    """`text` with its links in `<…>` (no embed), as many as fit in `limit` characters."""
    room = limit - len(text)
    pieces: list[str] = []
    last = 0
    for code in [*_CODE.finditer(text), None]:
        end = code.start() if code else len(text)
        for url in _URL.finditer(text, last, end):
            if room < 2:
                break
            pieces += [text[last : url.start(1)], f"<{url[1]}>"]
            last, room = url.end(1), room - 2
        if code is None:
            break
        pieces.append(text[last : code.end()])
        last = code.end()
    return "".join([*pieces, text[last:]])


class ChannelSurface:
    limit = LIMIT

    def __init__(
        self,
        channel: discord.abc.Messageable,
        reply_to: discord.Message | discord.PartialMessage | None,
    ) -> None:
        self.channel = channel
        self.place = str(getattr(channel, "id", ""))
        self.reply_to = reply_to
        self.posted: list[discord.Message] = []

    def posted_ids(self) -> list[str]:
        return [str(message.id) for message in self.posted]

    async def send(self, text: str) -> None:
        if self.reply_to is None or self.posted:
            sent = await self.channel.send(text, allowed_mentions=_NO_PINGS, suppress_embeds=True)
        else:  # the question may be deleted meanwhile: post anyway
            sent = await self.channel.send(
                text,
                allowed_mentions=_NO_PINGS,
                suppress_embeds=True,
                reference=self.reply_to.to_reference(fail_if_not_exists=False),
            )
        self.posted.append(sent)

    async def edit(self, index: int, text: str) -> None:
        # `suppress` is sent with every edit (False would bring the previews back).
        self.posted[index] = await self.posted[index].edit(
            content=text, allowed_mentions=_NO_PINGS, suppress=True
        )

    async def delete(self, index: int) -> None:
        await self.posted.pop(index).delete()


class InteractionSurface:
    """The deferred response is message 0 (it already shows "thinking…"); more are follow-ups.
    Both go through the interaction's webhook (its application id and token), which any
    process can rebuild from the stored route."""

    limit = LIMIT

    def __init__(self, webhook: discord.Webhook) -> None:
        self.webhook = webhook
        self.shown = False
        self.followups: list[discord.WebhookMessage] = []

    async def send(self, text: str) -> None:
        if self.shown:
            self.followups.append(
                await self.webhook.send(
                    text, wait=True, allowed_mentions=_NO_PINGS, suppress_embeds=True
                )
            )
        else:
            await self.edit(0, text)
            self.shown = True

    async def edit(self, index: int, text: str) -> None:
        if index == 0:
            await self.webhook.edit_message(
                _ORIGINAL, content=without_previews(text), allowed_mentions=_NO_PINGS
            )
        else:
            self.followups[index - 1] = await self.followups[index - 1].edit(
                content=text, allowed_mentions=_NO_PINGS
            )

    async def delete(self, index: int) -> None:
        if index == 0:
            await self.webhook.delete_message(_ORIGINAL)
            self.shown = False
        else:
            await self.followups.pop(index - 1).delete()
