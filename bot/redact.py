"""Credentials out of text that leaves the process (logs, error messages shown in chat).

Kept free of other Parley imports so configuration errors can use it before settings exist.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
# Well-known credential shapes: OpenAI-style keys, Slack tokens, bearer headers, Discord tokens.
SECRET_PATTERNS = re.compile(
    r"\bsk-[A-Za-z0-9_-]{8,}"
    r"|\bxox[abpre]-[A-Za-z0-9-]+"
    r"|\bxapp-[A-Za-z0-9-]+"
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{8,}=*"
    r"|\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"
)
# Any scheme: http(s), ws(s), postgresql+asyncpg…; the URL ends at whitespace or a quote.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s'\"<>`]+")


def _strip(match: re.Match[str]) -> str:
    url = match.group(0)
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:  # user:password@host → the host only
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    # A query can carry keys, signatures (signed CDN links) and what a person searched for.
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def strip_url_secrets(text: str) -> str:
    """`text` with every URL's userinfo, query string and fragment replaced."""
    return _URL.sub(_strip, text)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without `secrets` (longest first), credential shapes or URL secrets."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return strip_url_secrets(SECRET_PATTERNS.sub(REDACTED, text))
