"""Parley's core. The distribution is `parley-chatbot` (`parley` on PyPI is another project);
the command stays `parley`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "parley-chatbot"


def installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"
