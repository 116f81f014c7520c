"""`parley doctor` for Discord: the token is accepted, and the message content intent is on."""

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
        checks = [
            Check(
                "discord", True, say("doctor.discord.ok", name=me.get("username"), id=me.get("id"))
            )
        ]
        status, app, _ = await http_call(
            probe, "discord intents", _SETTING, "GET", f"{api}/oauth2/applications/@me", headers
        )
    except HttpFailed as failed:
        return [failed.check]
    flags = app.get("flags", 0) if status == 200 and isinstance(app, dict) else 0
    if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
        checks.append(Check("discord intents", True, say("doctor.discord.intent_ok")))
    else:
        checks.append(
            Check(
                "discord intents",
                False,
                say("doctor.discord.intent_off"),
                say("doctor.discord.intent_fix"),
            )
        )
    return checks
