"""bolt listeners: Slack events and slash commands → `Inbound`s with their facts; the core
admits and stores them (`Parley.accept`) before Slack is acknowledged, and answers them later,
in order, through `SlackListeners.answer`.

The app runs with `process_before_response`, so bolt acknowledges an event only after its
listener returned, i.e. after the message was stored; commands call `ack` after `accept`.
Storing is quick (no name look-up, no download: those wait for the message's turn), so Slack
is not kept waiting. A re-sent event (a retry, a reconnect, another process behind a load
balancer) is recognised by the database, so it shows nothing at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.channels import ChannelKinds
from adapters.slack.events import (
    PLATFORM,
    EventBody,
    MessageEvent,
    SlackFile,
    SlashCommand,
    command_kind,
    from_slack,
    mention,
    person,
)
from adapters.slack.files import download
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.surface import SPLIT_LIMIT, SlackSurface
from bot.core import Parley
from bot.delivery import mending
from bot.messages import Author, Command, ConversationKey, Facts, Final, Inbound
from bot.pipeline import Job
from bot.policy import Verdict
from bot.queued import Route
from bot.texts import say

log = logging.getLogger(__name__)

# Display names looked up with users.info, kept for this many people.
_NAME_CACHE = 1000
# Seconds Slack's clock (message ts) may differ from ours.
_CLOCK_SKEW = 5.0
# Posting there is impossible until someone invites Parley.
_CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class SlackListeners:
    def __init__(self, parley: Parley, client: AsyncWebClient, bot_user_id: str) -> None:
        self.parley = parley
        self.client = client
        self.bot_user_id = bot_user_id
        self.kinds = ChannelKinds(client)
        self._names: dict[str, str] = {}

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        # Every command of the core (including ones added later, e.g. /search) is a slash
        # command; each still has to be declared in the Slack app's manifest.
        for spec in self.parley.commands.specs():
            app.command(f"/{spec.name}")(self.on_command)

    # ------------------------------------------------------------------ events

    async def on_mention(self, body: EventBody, event: MessageEvent) -> None:
        await self._accept(body, event, event.get("thread_ts") or event["ts"], mentioned=True)

    async def on_message(self, body: EventBody, event: MessageEvent) -> None:
        # A channel message mentioning Parley also comes as `app_mention`: answered from there.
        if event.get("channel_type") != "im" and mention(self.bot_user_id) in event.get("text", ""):
            return
        await self._accept(body, event, event.get("thread_ts", ""), mentioned=False)

    async def _accept(
        self, body: EventBody, event: MessageEvent, thread: str, *, mentioned: bool
    ) -> None:
        user = person(event, self.bot_user_id)
        if user is None:
            return
        key = ConversationKey(PLATFORM, body.get("team_id", ""), event["channel"], thread)
        kind = await self.kinds.of(key.channel, event.get("channel_type"))
        admission = await self.parley.accept(
            Inbound(
                key,
                Author(user, user),  # the name is looked up when the message's turn comes
                from_slack(event.get("text", ""), self.bot_user_id),
                # The same ts arrives with app_mention and message events, and with every retry.
                message_id=event["ts"],
                facts=Facts(kind=kind, mentioned=mentioned),
            ),
            # Files are downloaded when the message is answered: only their references wait.
            Route(PLATFORM, event["ts"], {"kind": "event", "files": event.get("files", [])}),
        )
        if admission.verdict is Verdict.REFUSE:
            try:
                await self.client.chat_postMessage(
                    channel=key.channel,
                    thread_ts=key.thread or None,
                    text=to_mrkdwn(admission.notice),
                )
            except SlackApiError as exc:
                log.warning("could not post a notice in %s: %s", key, exc.response.get("error"))

    async def answer(self, job: Job) -> None:
        """Show the answer to a stored message or command, now that its turn has come."""
        message = job.message
        message = replace(
            message, author=replace(message.author, name=await self._name(message.author.id))
        )
        kind = job.route.get("kind")
        if kind == "event":
            await self._answer_event(message, job.route.get("files", []))
            return
        respond = AsyncRespond(response_url=job.route.get("response_url"))
        if kind == "ask":
            await self._ask(message, respond)
        else:
            await self._answer_privately(message, respond)

    async def _answer_event(self, message: Inbound, files: list[SlackFile]) -> None:
        try:
            message = replace(
                message,
                attachments=await download(
                    files, self.client.token or "", self.client.base_url, self.parley.settings
                ),
            )
            await self._stream(message)
        except SlackApiError as exc:
            log.warning(
                "could not post a reply to %s in %s: %s",
                message.message_id,
                message.key,
                exc.response.get("error"),
            )

    async def _stream(self, message: Inbound) -> None:
        surface = SlackSurface(self.client, message.key.channel, message.key.thread)
        # Slack shows nothing until the first edit: a slow model should not look dead.
        await self.parley.deliver(message, surface, say("slack.placeholder"))

    # ------------------------------------------------------------------ slash commands

    async def on_command(self, ack: AsyncAck, command: SlashCommand, respond: AsyncRespond) -> None:
        name = command["command"].lstrip("/")
        spec = self.parley.commands.get(name)
        user, channel = command["user_id"], command["channel_id"]
        args = from_slack(command.get("text", ""), self.bot_user_id)
        model_answers = spec is not None and spec.handler is None
        if spec is not None and model_answers and not args:
            await ack(text=say("command.usage", usage=spec.usage))
            return
        # Commands carry no ts: the time they arrived orders them (Slack's ts is Unix time).
        route = Route(
            PLATFORM,
            f"{time.time():.6f}",
            {"kind": "ask" if model_answers else "command", "response_url": respond.response_url},
        )
        admission = await self.parley.accept(
            Inbound(
                ConversationKey(PLATFORM, command.get("team_id", ""), channel),
                Author(user, user),
                args,
                message_id=command.get("trigger_id"),
                command=Command(name, args),
                facts=Facts(kind=command_kind(command)),
            ),
            route,
        )
        if admission.verdict is not Verdict.ANSWER:
            await ack(text=admission.notice) if admission.notice else await ack()
            return
        # The question is shown in the channel, above the answer posted there.
        await ack({"response_type": "in_channel"} if model_answers else "")

    async def _ask(self, message: Inbound, respond: AsyncRespond) -> None:
        try:
            await self._stream(message)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("could not post a slash command's answer in %s: %s", message.key, error)
            if error in _CANNOT_POST:
                await respond(text=say("cannot_post"))

    async def _answer_privately(self, message: Inbound, respond: AsyncRespond) -> None:
        """Commands answered by the core (/memory, /reset…): only the person sees the answer."""
        async for event in self.parley.reply(message):
            if isinstance(event, Final):
                response = await respond(text=to_mrkdwn(event.text))
                if response.status_code != 200:
                    log.warning(
                        "response_url refused the answer in %s: %s %s",
                        message.key,
                        response.status_code,
                        response.body,
                    )

    async def mend(self) -> None:
        """Replies a crash cut off ("Thinking…" or a half reply) show a notice, or the finished
        reply if it was ready (`bot.delivery.mending`); messages left over are removed."""
        for left in await self.parley.delivery.left_over(PLATFORM):
            channel, _, thread = left.place.partition("/")
            try:
                if not left.posted:
                    await self._mend_unrecorded(channel, thread, left.started)
                for ts, text in zip(left.posted, mending(left, SPLIT_LIMIT), strict=True):
                    if text:
                        await self.client.chat_update(channel=channel, ts=ts, text=to_mrkdwn(text))
                    else:
                        await self.client.chat_delete(channel=channel, ts=ts)
            except SlackApiError as exc:  # deleted meanwhile, or no access any more
                log.warning(
                    "could not mend a cut-off reply in %s: %s", channel, exc.response.get("error")
                )
            await self.parley.delivery.mended(left)

    async def _mend_unrecorded(self, channel: str, thread: str, since: float) -> None:
        """A placeholder the crash came right after: posted, its ts not yet stored. Parley's
        messages there since the reply began that still say only "Thinking…" are it (a live
        reply's placeholder would be edited again by its own delivery)."""
        oldest = f"{since - _CLOCK_SKEW:.6f}"
        if thread:
            page = await self.client.conversations_replies(
                channel=channel, ts=thread, oldest=oldest
            )
        else:
            page = await self.client.conversations_history(channel=channel, oldest=oldest)
        placeholder = to_mrkdwn(say("slack.placeholder"))
        messages: list[MessageEvent] = page.get("messages", [])
        for message in messages:
            if (
                message.get("user") == self.bot_user_id
                and message.get("text") == placeholder
                and float(message.get("ts", 0)) >= since - _CLOCK_SKEW
            ):
                notice = to_mrkdwn(say("shutdown.cut"))
                await self.client.chat_update(channel=channel, ts=message["ts"], text=notice)

    # ------------------------------------------------------------------ people

    async def _name(self, user: str) -> str:
        if user not in self._names:
            if len(self._names) >= _NAME_CACHE:
                self._names.pop(next(iter(self._names)))
            self._names[user] = await self._look_up_name(user)
        return self._names[user]

    async def _look_up_name(self, user: str) -> str:
        try:
            info = (await self.client.users_info(user=user))["user"]
        except SlackApiError as exc:
            # Usually a missing users:read scope: remembered, so it is not asked every time.
            log.warning(
                "users.info failed for %s (%s); using the id as the name",
                user,
                exc.response.get("error"),
            )
            return user
        profile = info.get("profile", {})
        return str(
            profile.get("display_name") or profile.get("real_name") or info.get("name") or user
        )
