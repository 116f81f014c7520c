"""Files shared in a Slack message → `Attachment`s, which the core reads like Discord's.

Slack serves a file at `url_private_download` to requests bearing the bot token. A token without
the `files:read` scope gets Slack's HTML login page instead, with status 200.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp

from adapters.slack.events import SlackFile
from bot.attachments import should_download
from bot.messages import Attachment
from bot.settings import Settings

log = logging.getLogger(__name__)

_TIMEOUT = aiohttp.ClientTimeout(total=60)
_CHUNK = 64 * 1024


async def download(
    files: Sequence[SlackFile], token: str, settings: Settings
) -> tuple[Attachment, ...]:
    """Each file with its bytes when the core can use them (size-bounded), else without."""
    if not files:
        return ()
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        return tuple([await _fetch(session, file, token, settings) for file in files])


async def _fetch(
    session: aiohttp.ClientSession, file: SlackFile, token: str, settings: Settings
) -> Attachment:
    name = file.get("name") or file.get("title") or file.get("id") or "file"
    mimetype = file.get("mimetype") or "application/octet-stream"
    size = file.get("size") or 0
    # Files hidden by a free plan's limits, or in other workspaces, come without a URL.
    url = file.get("url_private_download") or file.get("url_private")
    if not url or not should_download(name, mimetype, size, settings):
        return Attachment(name, mimetype, b"", size)
    limit = settings.attachment_max_bytes
    try:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            response.raise_for_status()
            if response.content_type == "text/html" and mimetype != "text/html":
                log.warning(
                    "Slack answered the download of %s (%s) with its login page: the "
                    "bot token lacks the files:read scope. Add it under OAuth & "
                    "Permissions and reinstall the app.",
                    name,
                    file.get("id"),
                )
                return Attachment(name, mimetype, b"", size, refused=True)
            data = bytearray()
            # The size Slack reported is not trusted: stop just past the limit.
            async for chunk in response.content.iter_chunked(_CHUNK):
                data += chunk
                if len(data) > limit:
                    break
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning(
            "could not download %s (%s, %d bytes) from Slack: %r", name, file.get("id"), size, exc
        )
        return Attachment(name, mimetype, b"", size)
    if len(data) > limit:  # larger than Slack said: the core reports it as too large
        return Attachment(name, mimetype, b"", len(data))
    return Attachment(name, mimetype, bytes(data), size)
