"""Failures memory reports as data: the bot words them for the person (bot/texts.py)."""

from __future__ import annotations


class Problem(Exception):
    """`reason` is the key of the text that explains the failure; `values` fill it in."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason, values)
        self.reason = reason
        self.values = values
