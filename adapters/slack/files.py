"""Files shared in a Slack message → `Attachment`s, which the core reads like Discord's.

Slack serves a file at `url_private_download` to requests bearing the bot token. A token without
the `files:read` scope gets Slack's HTML login page instead, with status 200. Only Slack's own
file host for the configured API gets the token (see `bot.downloads`): remote files, which
carry any URL, are skipped with a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp
from yarl import URL

from adapters.slack.events import SlackFile
from bot.attachments import should_download
from bot.downloads import FileFetcher, NotFromPlatform, Origin, private_allowed
from bot.messages import Attachment
from bot.settings import Settings

log = logging.getLogger(__name__)


def file_origins(api_url: str) -> tuple[Origin, ...]:
    """Slack's file host for an API URL: `https://slack.com/api/` → files.slack.com (and
    slack.com itself, which already gets the token); GovSlack's likewise."""
    api = Origin.of(api_url)
    return (api, Origin(api.scheme, f"files.{api.host}", api.port))


async def download(
    files: Sequence[SlackFile], token: str, api_url: str, settings: Settings
) -> tuple[Attachment, ...]:
    """Each file with its bytes when the core can use them (size-bounded), else without;
    `api_url` is the Web API's (SLACK_API_URL), which names Slack's file host."""
    if not files:
        return ()
    async with FileFetcher(file_origins(api_url), private_allowed(api_url)) as fetcher:
        return tuple([await _fetch(fetcher, file, token, settings) for file in files])


async def _fetch(
    fetcher: FileFetcher, file: SlackFile, token: str, settings: Settings
) -> Attachment:
    name = file.get("name") or file.get("title") or file.get("id") or "file"
    mimetype = file.get("mimetype") or "application/octet-stream"
    size = file.get("size") or 0
    # Files hidden by a free plan's limits, or in other workspaces, come without a URL.
    url = file.get("url_private_download") or file.get("url_private") or ""
    if not url or not should_download(name, mimetype, size, settings):
        return Attachment(name, mimetype, b"", size)
    limit = settings.attachment_max_bytes
    try:
        got = await fetcher.get(url, limit, {"Authorization": f"Bearer {token}"})
    except NotFromPlatform as exc:
        log.info("not downloading Slack file %s from %s: %s", file.get("id"), _host(url), exc)
        return Attachment(name, mimetype, b"", size, foreign=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The exception's text can carry the URL: the file's id and the error type suffice.
        log.warning(
            "could not download Slack file %s (%d bytes): %s",
            file.get("id"),
            size,
            type(exc).__name__,
        )
        return Attachment(name, mimetype, b"", size)
    if got.content_type == "text/html" and mimetype != "text/html":
        log.warning(
            "Slack answered the download of file %s with its login page: the bot token lacks "
            "the files:read scope. Add it under OAuth & Permissions and reinstall the app.",
            file.get("id"),
        )
        return Attachment(name, mimetype, b"", size, refused=True)
    if len(got.data) > limit:  # larger than Slack said: the core reports it as too large
        return Attachment(name, mimetype, b"", len(got.data))
    return Attachment(name, mimetype, got.data, size)


def _host(url: str) -> str:
    """Only the host of a file URL goes to the logs (its path and query can be secrets)."""
    return URL(url).host or "?"
