"""Whether Parley answers a message and who is an admin: decided here, once, for
every platform, from the neutral facts an adapter reports (`Inbound.facts`, the author's roles)
and the platform's rules (its settings section's allow-lists, admins, DM switch).

Order: the allow-lists (a message from elsewhere is ignored; a command is refused), then the
trigger (a command, a DM, a mention, a reply to Parley, a channel that answers everything, a
thread Parley takes part in), then the DM rules (refused with a reason, once per person).
Re-deliveries are recognised when the message is stored (`bot.pipeline`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.messages import Author, ConversationKey, Facts, Inbound
from bot.texts import say
from memory.bounded import Bounded

if TYPE_CHECKING:  # plug-in modules import the rules: keep them light
    from memory.store import Store

# Refusal notices are remembered for this many people (in memory: after a restart a person may
# be told once more), and memberships asked of the platform for this long.
_NOTICES_KEPT = 10_000
_MEMBERSHIP_SECONDS = 300.0
_MEMBERSHIPS_KEPT = 10_000
# Threads known to have a conversation (participation never ends, so this cache is never stale).
_THREADS_KEPT = 10_000


@dataclass(frozen=True)
class PlatformRules:
    """One platform's rules, from its settings section. Empty lists restrict nothing."""

    workspaces: frozenset[str] = frozenset()  # servers / teams; a DM needs a member of one
    channels: frozenset[str] = frozenset()  # a thread counts as its channel; not DMs
    users: frozenset[str] = frozenset()  # these people, or people with one of `roles`
    roles: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    admin_roles: frozenset[str] = frozenset()
    answer_channels: frozenset[str] = frozenset()  # every message answered, no mention needed
    dms: bool = True  # answer DMs and group DMs at all


class Verdict(StrEnum):
    ANSWER = "answer"
    IGNORE = "ignore"  # not for Parley, not allowed, or a re-delivery: nothing is shown
    REFUSE = "refuse"  # tell the person `notice`, and nothing else


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    message: Inbound  # with the author's admin status decided
    # Called in by a mention or a reply: what was said before is worth reading first.
    catch_up: bool = False
    notice: str = ""


def channel_ids(message: Inbound) -> set[str]:
    """The channel and, in a thread, the thread: lists may name either."""
    return {message.key.channel, message.key.thread} - {""}


class Policy:
    def __init__(
        self,
        store: Store,
        rules: Mapping[str, PlatformRules],
        queued: Callable[[ConversationKey], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.rules = dict(rules)
        # Whether messages of a conversation wait to be answered (it exists once they are).
        self._queued = queued
        self._told: Bounded[tuple[str, str, str], bool] = Bounded(_NOTICES_KEPT)
        # (platform, user, workspace) → (until when it holds, member or not)
        self._members: Bounded[tuple[str, str, str], tuple[float, bool]] = Bounded(
            _MEMBERSHIPS_KEPT
        )
        self._threads: Bounded[ConversationKey, bool] = Bounded(_THREADS_KEPT)

    def rules_for(self, platform: str) -> PlatformRules:
        return self.rules.get(platform, PlatformRules())

    async def admit(self, message: Inbound) -> Admission:
        """What to do with a message (or command) an adapter received."""
        rules = self.rules_for(message.key.platform)
        message = replace(
            message, author=replace(message.author, is_admin=self.is_admin(message, rules))
        )
        if not self.allowed(message, rules):
            return (
                self._refuse(message, say("not_allowed")) if message.command else _ignore(message)
            )
        trigger = await self._trigger(message, rules)
        if trigger is None:
            return _ignore(message)
        refusal = await self._dm_refusal(message, rules)
        if refusal:
            return self._refuse(message, refusal)
        return Admission(Verdict.ANSWER, message, catch_up=trigger)

    def allowed(self, message: Inbound, rules: PlatformRules) -> bool:
        """The allow-lists; server and channel lists restrict servers only, not DMs."""
        if not message.facts.outside_channels:
            if rules.workspaces and message.key.workspace not in rules.workspaces:
                return False
            if rules.channels and not channel_ids(message) & rules.channels:
                return False
        author = message.author
        if rules.users or rules.roles:
            return author.id in rules.users or bool(author.roles & rules.roles)
        return True

    @staticmethod
    def is_admin(message: Inbound, rules: PlatformRules) -> bool:
        """In a DM the person owns the conversation; elsewhere a listed admin (by id or role) or
        someone the platform lets manage the place."""
        return message.facts.is_dm or _staff(message.author, rules)

    def admin_tools(self, message: Inbound) -> bool:
        """Whether admin-only tools (MCP servers) are offered: to admins, but owning a DM does
        not count (anyone has one)."""
        if not message.facts.is_dm:
            return message.author.is_admin
        return _staff(message.author, self.rules_for(message.key.platform))

    async def _trigger(self, message: Inbound, rules: PlatformRules) -> bool | None:
        """None: not for Parley; else whether to catch up first (a mention or a reply)."""
        facts: Facts = message.facts
        if message.command is not None or facts.is_dm:
            return False
        if facts.mentioned or facts.reply_to_bot:
            return True
        if await self.answers_all(message, rules):
            return False
        if message.key.thread and (facts.thread_by_bot or await self._takes_part(message)):
            return False
        return None

    async def answers_all(self, message: Inbound, rules: PlatformRules) -> bool:
        """Listed in the settings, or switched on with /listen (a thread follows its channel)."""
        return bool(channel_ids(message) & rules.answer_channels) or await self.store.listening(
            message.key
        )

    async def _takes_part(self, message: Inbound) -> bool:
        """Parley was mentioned or used in the thread before: its conversation exists (that
        survives restarts)."""
        if message.key in self._threads:
            return True
        if await self.store.exists(message.key) or (
            self._queued is not None and await self._queued(message.key)
        ):
            self._threads.put(message.key, True)
            return True
        return False

    async def _dm_refusal(self, message: Inbound, rules: PlatformRules) -> str:
        facts = message.facts
        if not facts.outside_channels:
            return ""
        if not rules.dms:
            return say("dm.off")
        if rules.workspaces and not await self._member(message, rules.workspaces):
            return say("dm.members_only")
        return ""

    async def _member(self, message: Inbound, workspaces: frozenset[str]) -> bool:
        ask = message.facts.member_of
        if ask is None:
            return False
        now = time.monotonic()
        for workspace in sorted(workspaces):
            key = (message.key.platform, message.author.id, workspace)
            known = self._members.get(key)
            if known is not None and known[0] > now:
                member = known[1]
            else:  # asked again after a while: people join and leave
                member = await ask(workspace)
                self._members.put(key, (now + _MEMBERSHIP_SECONDS, member))
            if member:
                return True
        return False

    def _refuse(self, message: Inbound, notice: str) -> Admission:
        """A command is always answered (the platform expects a response); a message's
        refusal is told once per person and reason."""
        if message.command is None:
            told = (message.key.platform, message.author.id, notice)
            if told in self._told:
                return _ignore(message)
            self._told.put(told, True)
        return Admission(Verdict.REFUSE, message, notice=notice)


def _staff(author: Author, rules: PlatformRules) -> bool:
    """A listed admin (by id or role), or someone the platform lets manage the place."""
    return (
        author.can_manage
        or author.id in rules.admin_users
        or bool(author.roles & rules.admin_roles)
    )


def _ignore(message: Inbound) -> Admission:
    return Admission(Verdict.IGNORE, message)
