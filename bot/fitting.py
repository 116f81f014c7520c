"""Making a prompt fit the model's window in the model's own tokens.

Prompts are built from tiktoken counts (stored with every message) and a budget divided by the
calibrated factor for the prompt's scripts. Where the model's own tokenizer is available (the
server's `/tokenize`, or PARLEY_TOKENIZER) the built prompt is counted exactly before it is
sent; otherwise the server's usage report after the reply teaches the factor. An overflow the
server reports tightens the factor, and the prompt is built again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from bot.calibration import DEFAULT_FACTORS, Calibrator, mix
from bot.chat import ChatMessage, ContextTooLong, text_of
from bot.model_tokenizer import ModelTokenizer
from bot.prompt import PromptBuilder
from bot.reply_stream import Usage
from memory.tokens import TOKENS_PER_REPLY

log = logging.getLogger(__name__)

# Chat-template tokens around each message in the model's own tokens (ChatML: 5).
MODEL_TOKENS_PER_MESSAGE = 6
# An empty stream for a prompt past this share of the window is taken for an overflow.
_EMPTY_MEANS_OVERFLOW = 0.5
# The least reply worth asking for when the window is nearly full.
MIN_REPLY_TOKENS = 16
# Overflow with neither count nor window said, counts already taught: the window is taken to be
# this share of the prompt that overflowed.
_BLIND_SHRINK = 0.9
# Text longer than this is scanned for its scripts in a worker thread.
_OFFLOAD_CHARS = 50_000


def reply_reserve(window: int, max_reply_tokens: int) -> int:
    """Tokens kept free for the reply: never more than a quarter of a small window."""
    return max(min(max_reply_tokens, window // 4), MIN_REPLY_TOKENS)


def _text(messages: list[ChatMessage]) -> str:
    return "\n".join(text_of(message) for message in messages)


@dataclass(frozen=True)
class Fit:
    """A built prompt measured against the window."""

    shares: dict[str, float]  # the prompt's script mix
    counted: int  # its tiktoken count (what Parley budgets with)
    model_tokens: int  # the model's count: exact, or estimated with the calibration
    exact: bool
    fits: bool


class Fitter:
    def __init__(
        self,
        prompts: PromptBuilder,
        calibrator: Calibrator,
        tokenizer: ModelTokenizer | None,
        max_reply_tokens: int,
    ) -> None:
        self.prompts = prompts
        self.calibrator = calibrator
        self.tokenizer = tokenizer
        self.max_reply_tokens = max_reply_tokens

    @property
    def window(self) -> int:
        return self.prompts.window

    async def shares(self, text: str) -> dict[str, float]:
        if self.calibrator.uniform():
            return {"other": 1.0}  # every script counts the same: no need to look
        if len(text) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(mix, text)
        return mix(text)

    def factor(self, shares: dict[str, float]) -> float:
        return self.calibrator.factor(shares)

    def worst_factor(self) -> float:
        """The factor of the script the model counts most expensively."""
        return max(self.calibrator.script_factor(script) for script in DEFAULT_FACTORS)

    async def measure(self, messages: list[ChatMessage], counted: int) -> Fit:
        """How many of the model's tokens the prompt is, and whether it leaves the reply room."""
        # Joined only when read (~0.5 ms of CPU at a 128k-token window): a native model nothing
        # was learnt for, without the model's tokenizer, needs only the count.
        looked_at = self.tokenizer is not None or not self.calibrator.uniform()
        text = _text(messages) if looked_at else ""
        shares = await self.shares(text)
        exact = await self.tokenizer.count(text) if self.tokenizer is not None else None
        if exact is not None:
            model_tokens = exact + MODEL_TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_REPLY
            await self.calibrator.observe(shares, counted, model_tokens)
        else:
            model_tokens = math.ceil(counted * self.factor(shares))
        fits = model_tokens + self.prompts.reply_reserve <= self.window
        return Fit(shares, counted, model_tokens, exact is not None, fits)

    def reply_limit(self, fit: Fit) -> int:
        """Never ask for more reply tokens than the window leaves."""
        return max(min(self.max_reply_tokens, self.window - fit.model_tokens), MIN_REPLY_TOKENS)

    async def learn(self, fit: Fit, usage: Usage | None, extra_counted: int = 0) -> None:
        """The server's usage report of a prompt we counted as `fit.counted + extra_counted`."""
        if usage is None or fit.exact or usage.prompt_tokens <= 0:
            return
        await self.calibrator.observe(fit.shares, fit.counted + extra_counted, usage.prompt_tokens)

    def empty_means_overflow(self, fit: Fit) -> bool:
        return fit.model_tokens >= self.window * _EMPTY_MEANS_OVERFLOW

    async def overflowed(self, fit: Fit, error: ContextTooLong) -> None:
        """The server found the prompt too long: learn what it said, else narrow blindly."""
        said = error.overflow
        if said.window and said.window < self.window:
            self._shrink(said.window, "the server said so")
            return
        if said.prompt_tokens and said.prompt_tokens > fit.model_tokens:
            await self.calibrator.observe(fit.shares, fit.counted, said.prompt_tokens)
            if fit.counted * self.factor(fit.shares) > said.prompt_tokens:
                return
        # Nothing to learn from: either the window or our count is off. Counts the server has
        # not taught yet are the likelier culprit; once taught, the window is.
        if self.calibrator.learnt(fit.shares) or fit.exact:
            self._shrink(
                max(int(fit.model_tokens * _BLIND_SHRINK), 256), "a prompt that size overflowed"
            )
        else:
            await self.calibrator.tighten(fit.shares)

    def _shrink(self, window: int, why: str) -> None:
        if window >= self.window:
            return
        log.warning(
            "context window narrowed from %d to %d tokens (%s); set PARLEY_CONTEXT_TOKENS to "
            "the server's real window",
            self.window,
            window,
            why,
        )
        self.prompts.window = window
        self.prompts.reply_reserve = reply_reserve(window, self.max_reply_tokens)
