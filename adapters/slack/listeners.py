"""bolt listeners: Slack events and slash commands → `Inbound`, replies rendered back.

Every listener acknowledges at once (bolt acks events itself; commands call `ack` first) and
leaves the work to `Parley.background`, so Slack never waits more than a moment and never
re-sends for a slow ack. A re-sent event is still possible (network, reconnects, restarts): its
message was claimed in the store the first time, so it shows nothing at all.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.files import download
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.policy import PLATFORM, Event, Policy, Route, mention
from adapters.slack.surface import SlackSurface
from bot.core import Parley
from bot.messages import Author, Command, ConversationKey, Final, Inbound
from bot.streaming import deliver
from bot.texts import say

log = logging.getLogger(__name__)

# Display names looked up with users.info, kept for this many people.
_NAME_CACHE = 1000
# Posting there is impossible until someone invites Parley.
_CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def from_slack(text: str, bot_user_id: str) -> str:
    """A person's message as the model should read it: no mention of Parley, no entities."""
    text = text.replace(mention(bot_user_id), "")
    for entity, char in _SLACK_ENTITIES:
        text = text.replace(entity, char)
    return text.strip()


class SlackListeners:
    def __init__(self, parley: Parley, client: AsyncWebClient, policy: Policy) -> None:
        self.parley = parley
        self.client = client
        self.policy = policy
        self._names: dict[str, str] = {}

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        # Every command of the core (including ones added later, e.g. /search) is a slash
        # command; each still has to be declared in the Slack app's manifest.
        for spec in self.parley.commands.specs():
            app.command(f"/{spec.name}")(self.on_command)

    # ------------------------------------------------------------------ events

    async def on_mention(self, body: dict[str, Any], event: Event) -> None:
        self._answer_later(self.policy.route_mention(event, str(body.get("team_id", ""))), event)

    async def on_message(self, body: dict[str, Any], event: Event) -> None:
        self._answer_later(
            await self.policy.route_message(event, str(body.get("team_id", ""))), event
        )

    def _answer_later(self, route: Route | None, event: Event) -> None:
        if route is not None:
            self.parley.background(
                self._answer(route, event), f"Slack reply to {event.get('ts')} in {route.key}"
            )

    async def _answer(self, route: Route, event: Event) -> None:
        # Participation lives in the store, so a restart does not make Parley forget threads.
        if route.if_participating and not await self.parley.store.exists(route.key):
            return
        channel, ts = route.key.channel, str(event["ts"])
        # Claimed before anything is downloaded or posted (the placeholder), so a re-delivery
        # leaves no trace; this also covers commands, which the core does not store.
        if not await self.parley.store.claim_event(PLATFORM, f"{channel}/{ts}"):
            return
        message = Inbound(
            route.key,
            await self._author(str(event["user"]), channel),
            from_slack(str(event.get("text", "")), self.policy.bot_user_id),
            # The same ts arrives with app_mention and message events, and with every retry.
            message_id=ts,
            attachments=await download(
                event.get("files", []), self.client.token or "", self.parley.settings
            ),
        )
        try:
            await self._stream(message)
        except SlackApiError as exc:
            log.warning(
                "could not post a reply to %s in %s: %s",
                event.get("ts"),
                route.key,
                exc.response.get("error"),
            )

    async def _stream(self, message: Inbound) -> None:
        surface = SlackSurface(self.client, message.key.channel, message.key.thread)
        # Slack shows nothing until the first edit: a slow model should not look dead.
        await deliver(
            self.parley.reply(message),
            surface,
            self.parley.settings.stream_interval,
            placeholder=say("slack.placeholder"),
        )

    # ------------------------------------------------------------------ slash commands

    async def on_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        name = str(command["command"]).lstrip("/")
        spec = self.parley.commands.get(name)
        user, channel = str(command["user_id"]), str(command["channel_id"])
        args = from_slack(str(command.get("text", "")), self.policy.bot_user_id)
        if not self.policy.allowed(user, channel):
            await ack(text=say("not_allowed"))
            return
        model_answers = spec is not None and spec.handler is None
        if spec is not None and model_answers and not args:
            await ack(text=say("command.usage", usage=spec.usage))
            return
        # The question is shown in the channel, above the answer posted there.
        await ack({"response_type": "in_channel"} if model_answers else "")
        message = Inbound(
            ConversationKey(PLATFORM, str(command.get("team_id", "")), channel),
            await self._author(user, channel),
            args,
            message_id=command.get("trigger_id"),
            command=Command(name, args),
        )
        job = (
            self._ask(message, respond)
            if model_answers
            else self._answer_privately(message, respond)
        )
        self.parley.background(job, f"Slack /{name} in {channel}")

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

    # ------------------------------------------------------------------ people

    async def _author(self, user: str, channel: str) -> Author:
        return Author(user, await self._name(user), self.policy.is_admin(user, channel))

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
