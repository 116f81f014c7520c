"""Which search settings each provider needs; `parley` (and a later `parley doctor`) checks them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.texts import say

if TYPE_CHECKING:
    from bot.settings import Settings

# Hosted APIs have a well-known address; a SearxNG instance is always someone's own.
DEFAULT_URLS = {
    "tavily": "https://api.tavily.com",
    "brave": "https://api.search.brave.com",
}


def search_problem(settings: Settings) -> str | None:
    """What is missing for the configured search provider, as one line; None when usable."""
    provider = settings.search_provider
    if provider == "searxng" and not settings.search_url:
        return say("config.searxng_url")
    if provider == "tavily" and not settings.tavily_api_key:
        return say("config.tavily_key")
    if provider == "brave" and not settings.brave_api_key:
        return say("config.brave_key")
    if provider == "duckduckgo" and settings.search_url:
        return say("config.duckduckgo_url")
    return None


def search_url(settings: Settings) -> str:
    """The provider's base URL without a trailing slash."""
    return (settings.search_url or DEFAULT_URLS.get(settings.search_provider, "")).rstrip("/")
