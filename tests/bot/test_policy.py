"""The one place that decides whether Parley answers (bot/policy.py), from neutral facts and a
platform's rules, on a real store. The adapters' end-to-end tests show the same through Discord
and Slack."""

from __future__ import annotations

from bot.core import Parley
from bot.messages import Author, ChannelKind, Command, ConversationKey, Facts, Inbound
from bot.policy import PlatformRules, Verdict

CHANNEL = ConversationKey("chat", "team", "general")
THREAD = ConversationKey("chat", "team", "general", "t1")
DM = ConversationKey("chat", "team", "D1")
CAROL = Author("carol", "Carol", roles=frozenset({"Helpers"}))


def said(
    key: ConversationKey = CHANNEL, author: Author = CAROL, message_id: str = "1", **facts: object
) -> Inbound:
    return Inbound(key, author, "hi", message_id=message_id, facts=Facts(**facts))  # type: ignore[arg-type]


async def test_triggers_and_admins(parley: Parley) -> None:
    parley.policy.rules["chat"] = PlatformRules(admin_roles=frozenset({"Helpers"}))
    assert (await parley.admit(said(message_id="a"))).verdict is Verdict.IGNORE
    mentioned = await parley.admit(said(message_id="b", mentioned=True))
    assert mentioned.verdict is Verdict.ANSWER and mentioned.catch_up
    assert mentioned.message.author.is_admin  # by role
    in_dm = await parley.admit(said(DM, Author("dave", "Dave"), "c", kind=ChannelKind.DM))
    assert in_dm.verdict is Verdict.ANSWER and not in_dm.catch_up
    assert in_dm.message.author.is_admin  # a DM is the person's own
    # A thread Parley takes part in (its conversation exists) is answered without a mention.
    assert (await parley.admit(said(THREAD, message_id="d"))).verdict is Verdict.IGNORE
    await parley.store.conversation(THREAD)
    assert (await parley.admit(said(THREAD, message_id="e"))).verdict is Verdict.ANSWER


async def test_allow_lists_ignore_messages_and_refuse_commands(parley: Parley) -> None:
    parley.policy.rules["chat"] = PlatformRules(
        channels=frozenset({"random"}), users=frozenset({"erin"})
    )
    assert (await parley.admit(said(mentioned=True))).verdict is Verdict.IGNORE
    command = Inbound(CHANNEL, CAROL, "", message_id="2", command=Command("help"))
    refused = await parley.admit(command)
    assert refused.verdict is Verdict.REFUSE and refused.notice
    # Channel lists restrict channels only: Erin's DM is answered.
    erin_dm = said(DM, Author("erin", "Erin"), "3", kind=ChannelKind.DM)
    assert (await parley.admit(erin_dm)).verdict is Verdict.ANSWER


async def test_dm_refusals_are_told_once_per_person_and_memberships_are_asked(
    parley: Parley,
) -> None:
    asked: list[str] = []

    async def member_of(workspace: str) -> bool:
        asked.append(workspace)
        return workspace == "team"

    parley.policy.rules["chat"] = PlatformRules(workspaces=frozenset({"team"}))
    outsider = said(DM, message_id="4", kind=ChannelKind.DM)
    first = await parley.admit(outsider)
    again = await parley.admit(said(DM, message_id="5", kind=ChannelKind.DM))
    assert first.verdict is Verdict.REFUSE and again.verdict is Verdict.IGNORE
    fay = Author("fay", "Fay")
    for message_id in ("6", "7"):
        member = said(DM, fay, message_id, kind=ChannelKind.DM, member_of=member_of)
        assert (await parley.admit(member)).verdict is Verdict.ANSWER
    hal = Author("hal", "Hal")

    async def not_member(workspace: str) -> bool:
        asked.append(f"hal in {workspace}")
        return False

    for message_id in ("8", "9"):
        await parley.admit(said(DM, hal, message_id, kind=ChannelKind.DM, member_of=not_member))
    assert asked == ["team", "hal in team"]  # both answers remembered for a while

    parley.policy.rules["chat"] = PlatformRules(dms=False)
    off = await parley.admit(said(DM, Author("gus", "Gus"), "10", kind=ChannelKind.DM))
    assert off.verdict is Verdict.REFUSE and "direct messages" in off.notice
