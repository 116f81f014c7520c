"""Which search settings each provider needs; `parley` (and a later `parley doctor`) checks them."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        return ("PARLEY_SEARCH_URL is not set: searxng needs the address of your instance, "
                "e.g. http://localhost:8888 (with the JSON format enabled).")
    if provider == "tavily" and not settings.tavily_api_key:
        return "TAVILY_API_KEY is not set: the tavily search provider needs an API key."
    if provider == "brave" and not settings.brave_api_key:
        return "BRAVE_API_KEY is not set: the brave search provider needs an API key."
    if provider == "duckduckgo" and settings.search_url:
        return ("PARLEY_SEARCH_URL cannot be used with duckduckgo (the ddgs package has no "
                "base-URL setting): unset it or pick another provider.")
    return None


def search_url(settings: Settings) -> str:
    """The provider's base URL without a trailing slash."""
    return (settings.search_url or DEFAULT_URLS.get(settings.search_provider, "")).rstrip("/")
