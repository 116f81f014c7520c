"""`parley doctor` for Slack: the bot token is accepted, has the scopes Parley needs, and a way
for Slack to reach Parley (Socket Mode or HTTP) is configured."""

from __future__ import annotations

from adapters.slack.scopes import BOT_SCOPES
from adapters.slack.settings import SlackSettings
from bot.checks import Check, HttpFailed, Probe, http_call
from bot.texts import say


def missing_slack_scopes(granted_header: str) -> list[str]:
    """Every scope the Slack code uses (the one list the manifests come from) not granted."""
    granted = {scope.strip() for scope in granted_header.split(",")}
    return [scope for scope in BOT_SCOPES if scope not in granted]


def _slack_mode(section: SlackSettings) -> Check:
    if section.slack_app_token:
        if not section.slack_app_token.startswith("xapp-"):
            return Check(
                "slack mode",
                False,
                say("doctor.slack.bad_app_token"),
                say("doctor.slack.app_token_fix"),
            )
        return Check("slack mode", True, say("doctor.slack.socket"))
    if section.slack_signing_secret:
        return Check("slack mode", True, say("doctor.slack.http"))
    return Check("slack mode", False, say("doctor.slack.no_mode"), say("doctor.slack.mode_fix"))


def _scopes(granted_header: str) -> Check:
    missing = missing_slack_scopes(granted_header)
    if missing:
        return Check(
            "slack scopes",
            False,
            say("doctor.slack.scopes_missing", missing=", ".join(missing)),
            say("doctor.slack.scopes_fix"),
        )
    return Check("slack scopes", True, say("doctor.slack.scopes_ok", scopes=", ".join(BOT_SCOPES)))


async def check_slack(section: SlackSettings, probe: Probe) -> list[Check]:
    if not section.slack_bot_token:
        if section.slack_app_token or section.slack_signing_secret:
            return [
                Check(
                    "slack", False, say("doctor.slack.no_bot_token"), say("doctor.slack.token_fix")
                )
            ]
        return []
    url = section.slack_api_url.rstrip("/") + "/auth.test"
    headers = {"Authorization": f"Bearer {section.slack_bot_token}"}
    try:
        status, body, response_headers = await http_call(
            probe, "slack", "SLACK_API_URL", "POST", url, headers
        )
    except HttpFailed as failed:
        return [failed.check]
    if not isinstance(body, dict) or not body.get("ok"):
        error = body.get("error") if isinstance(body, dict) else f"HTTP {status}"
        return [
            Check(
                "slack",
                False,
                say("doctor.slack.bad_token", error=error),
                say("doctor.slack.token_fix"),
            )
        ]
    return [
        Check("slack", True, say("doctor.slack.ok", user=body.get("user"), team=body.get("team"))),
        _scopes(response_headers.get("x-oauth-scopes", "")),
        _slack_mode(section),
    ]
