"""Moderation: a blocked-word list (PARLEY_BLOCKED_WORDS) and the endpoint's /v1/moderations
(PARLEY_MODERATION=endpoint). A blocked or flagged message is refused before any chat call;
with PARLEY_MODERATE_REPLIES replies are checked the same way before they are shown."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bot.chat import ChatClient, ChatError
from bot.messages import Inbound
from bot.settings import ConfigError, Settings
from bot.texts import say

log = logging.getLogger(__name__)

_SPACES = re.compile(r"\s+")
_ASCII_WORD = re.compile(r"[a-z0-9' -]+")


def normalize(text: str) -> str:
    """Case-, width- and spacing-insensitive form (NFKC folds full-width letters)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


class BlockedWords:
    """Matches listed words and phrases. English-like entries match whole words only ("ass"
    does not block "class"); others, e.g. Korean, match inside words too, since particles and
    endings attach to them (바보 blocks 바보야)."""

    def __init__(self, entries: list[str]) -> None:
        terms = sorted({normalize(entry) for entry in entries if normalize(entry)}, key=len)
        patterns = [
            rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])"
            if _ASCII_WORD.fullmatch(term)
            else re.escape(term)
            for term in reversed(terms)
        ]
        self.count = len(terms)
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    @classmethod
    def load(cls, path: Path) -> BlockedWords:
        """Read the list: one entry per line; blank lines and lines starting with # skipped."""
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            error = exc.strerror if isinstance(exc, OSError) else exc
            raise ConfigError(say("moderation.words_unreadable", path=path, error=error)) from exc
        return cls([line for line in lines if not line.lstrip().startswith("#")])

    def found(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(normalize(text)) is not None


class ModerationFailed(Exception):
    """The moderation endpoint could not give a verdict."""


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    categories: tuple[str, ...] = ()


class EndpointModeration:
    """The endpoint's /v1/moderations, with the chat API's key and base URL."""

    def __init__(self, chat: ChatClient, model: str | None) -> None:
        self.chat = chat
        self.model = model

    async def check(self, text: str) -> Verdict:
        try:
            results = await self.chat.moderate(text, self.model)
        except ChatError as exc:
            raise ModerationFailed(str(exc)) from exc
        flagged = [result for result in results if result.flagged]
        if not flagged:
            return Verdict(False)
        named = flagged[0].categories.model_dump(by_alias=True)
        return Verdict(True, tuple(sorted(name for name, on in named.items() if on)))


class Moderation:
    """A MessageGuard and ReplyCheck (see bot.hooks)."""

    def __init__(
        self,
        words: BlockedWords | None,
        endpoint: EndpointModeration | None,
        fail_closed: bool,
    ) -> None:
        self.words = words
        self.endpoint = endpoint
        self.fail_closed = fail_closed

    async def admit(self, message: Inbound) -> str | None:
        return await self._check(message.text, "message", "moderation")

    async def check_reply(self, text: str) -> str | None:
        return await self._check(text, "reply", "moderation.reply")

    async def _check(self, text: str, what: str, key: str) -> str | None:
        if self.words is not None and self.words.found(text):
            log.info("%s refused: it contains a blocked word", what)
            return say(f"{key}.blocked")
        if self.endpoint is None:
            return None
        try:
            verdict = await self.endpoint.check(text)
        except ModerationFailed as exc:
            if self.fail_closed:
                log.warning("moderation failed (%s); refusing the %s (fail closed)", exc, what)
                return say(f"{key}.unavailable")
            log.warning("moderation failed (%s); letting the %s through (fail open)", exc, what)
            return None
        if verdict.flagged:
            log.info("%s flagged by moderation: %s", what, ", ".join(verdict.categories))
            return say(f"{key}.flagged", categories=", ".join(verdict.categories) or "-")
        return None


def open_moderation(settings: Settings, chat: ChatClient) -> Moderation | None:
    """Moderation as configured, or None when it is off; ConfigError for an unreadable list."""
    words = BlockedWords.load(settings.blocked_words) if settings.blocked_words else None
    endpoint = (
        EndpointModeration(chat, settings.moderation_model)
        if settings.moderation == "endpoint"
        else None
    )
    if words is None and endpoint is None:
        return None
    return Moderation(words, endpoint, settings.moderation_fail == "closed")
