"""`parley doctor` for Discord: the token is accepted, the message content intent is on, and the
shard layout of this process."""

from __future__ import annotations

from adapters.discord.settings import DiscordSettings
from bot.checks import Check, HttpFailed, Probe, http_call
from bot.texts import say

# Discord application flags: the message content intent, enabled (verified or not).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
_SETTING = "PARLEY_DISCORD_API_URL"


async def check_discord(section: DiscordSettings, probe: Probe) -> list[Check]:
    token = section.discord_token
    if not token:
        return []
    api = section.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {token}"}
    checks: list[Check] = []
    try:
        status, me, _ = await http_call(
            probe, "discord", _SETTING, "GET", f"{api}/users/@me", headers
        )
        if status != 200 or not isinstance(me, dict):
            return [
                Check(
                    "discord",
                    False,
                    say("doctor.discord.bad_token", status=status),
                    say("doctor.discord.token_fix"),
                )
            ]
        checks.append(
            Check(
                "discord", True, say("doctor.discord.ok", name=me.get("username"), id=me.get("id"))
            )
        )
        status, app, _ = await http_call(
            probe, "discord intents", _SETTING, "GET", f"{api}/oauth2/applications/@me", headers
        )
        checks.append(_intents(app if status == 200 else None))
        status, gateway, _ = await http_call(
            probe, "discord shards", _SETTING, "GET", f"{api}/gateway/bot", headers
        )
    except HttpFailed as failed:
        return [*checks, failed.check]
    checks.append(_shards(section, gateway if status == 200 else None))
    return checks


def _intents(app: object) -> Check:
    flags = app.get("flags", 0) if isinstance(app, dict) else 0
    if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
        return Check("discord intents", True, say("doctor.discord.intent_ok"))
    return Check(
        "discord intents",
        False,
        say("doctor.discord.intent_off"),
        say("doctor.discord.intent_fix"),
    )


def _shards(section: DiscordSettings, gateway: object) -> Check:
    """This process's shards, next to what Discord recommends for the bot's number of servers."""
    info = gateway if isinstance(gateway, dict) else {}
    recommended = info.get("shards", "?")
    limits = info.get("session_start_limit")
    concurrency = limits.get("max_concurrency", 1) if isinstance(limits, dict) else 1
    ids = section.shard_ids
    if ids is None:
        return Check("discord shards", True, say("doctor.discord.unsharded", count=recommended))
    detail = say(
        "doctor.discord.shards",
        ids=",".join(map(str, ids)),
        total=section.discord_shard_count,
        count=recommended,
        concurrency=concurrency,
    )
    return Check("discord shards", True, detail)
