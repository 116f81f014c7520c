"""How many of the model's own tokens one counted token is, per script, learnt and kept.

Parley counts with tiktoken (exact for OpenAI models). A local model's tokenizer counts the
same text differently, and far more so for some scripts: a small GGUF model counts Korean 3.7x
higher, Japanese 2.6x, Russian 2.4x, English ~1.1x. So the budget is scaled by a factor per
script: conservative defaults until the server has told us better (its usage report, its
tokenizer, or an overflow error), then what it told us, with a safety margin. Factors are kept
per model in the database, so a restart does not start from the defaults again.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy.ext.asyncio import AsyncEngine

from memory.calibrations import CalibrationStore, Ratios

log = logging.getLogger(__name__)

# Each script's characters, and roughly how many counted tokens one character is (to weigh a
# mixed text by its tokens, not its characters).
_SCRIPTS: dict[str, tuple[re.Pattern[str], float]] = {
    "hangul": (re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]"), 1.0),
    "cjk": (re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), 1.0),
    "cyrillic": (re.compile(r"[\u0400-\u052f]"), 0.35),
    "emoji": (re.compile(r"[\U0001f000-\U0001faff\u2600-\u27bf]"), 1.0),
}
OTHER = "other"  # Latin script, digits, code, punctuation
_OTHER_PER_CHAR = 0.25

# Until the server tells: a little above what small local models' tokenizers were measured to
# count relative to tiktoken's o200k (Korean 3.7x, Japanese 2.6x, Chinese 2.4x, Russian 2.4x,
# emoji 1.9x, JSON 1.2x, English 1.1-1.3x), so the first message is already safe.
DEFAULT_FACTORS = {"hangul": 4.0, "cjk": 2.8, "cyrillic": 2.6, "emoji": 2.1, OTHER: 1.35}
# Applied on top of what was learnt: usage varies a little from prompt to prompt.
MARGIN = 1.06
# A lower observation moves the ratio this far towards it; a higher one is taken at once.
_EASE_DOWN = 0.3
# Overflow with nothing learnt from it: raise the factor by this much.
_TIGHTEN = 1.25
# No tokenizer counts a script at less than this many tokens per tiktoken token.
_LOWEST = 0.3
# Share of a text's tokens one script must have for an observation to be its alone.
_DOMINANT = 0.6
# A ratio is written when it moved this far (relative) from the value the database holds:
# smaller steps refine it in memory only, so a settled model costs no write per reply, and a
# restart resumes within this step of where it was.
_WRITE_STEP = 0.01


def mix(text: str) -> dict[str, float]:
    """Each script's estimated share of `text`'s counted tokens (shares sum to 1)."""
    weights: dict[str, float] = {}
    rest = len(text)
    for script, (pattern, per_char) in _SCRIPTS.items():
        found = len(pattern.findall(text))
        if found:
            weights[script] = found * per_char
            rest -= found
    if rest > 0 or not weights:
        weights[OTHER] = max(rest, 1) * _OTHER_PER_CHAR
    total = sum(weights.values())
    return {script: weight / total for script, weight in weights.items()}


class Calibrator:
    """The factors of one model. `native` models are the ones tiktoken counts exactly (OpenAI's):
    they start at 1 and only go up if the server counts more."""

    def __init__(self, engine: AsyncEngine, model: str, native: bool) -> None:
        self._store = CalibrationStore(engine, model)
        self.model = model
        self.native = native
        self._ratios: Ratios = {}
        self._written: dict[str, float] = {}  # script → the ratio the database holds

    async def load(self) -> None:
        self._ratios = await self._store.load()
        self._written = {script: ratio for script, (ratio, _) in self._ratios.items()}

    def script_factor(self, script: str) -> float:
        learnt = self._ratios.get(script)
        if learnt is None:
            return 1.0 if self.native else DEFAULT_FACTORS[script]
        ratio = learnt[0]
        if self.native and ratio <= 1.0:
            return 1.0  # tiktoken is exact for these: no margin needed
        return ratio * MARGIN

    def factor(self, shares: dict[str, float]) -> float:
        """Model tokens per counted token for a text of this script mix."""
        return sum(self.script_factor(script) * share for script, share in shares.items())

    def learnt(self, shares: dict[str, float]) -> bool:
        """The server has taught the factor of the text's main script."""
        script = max(shares.items(), key=lambda item: item[1])[0]
        return script in self._ratios

    def uniform(self) -> bool:
        """Every script has the same factor (a native model nothing was learnt for)."""
        return self.native and not self._ratios

    async def observe(self, shares: dict[str, float], counted: int, theirs: int) -> None:
        """The server counted `theirs` tokens for a text we counted as `counted`."""
        if counted <= 0 or theirs <= 0:
            return
        observed = theirs / counted
        script, share = max(shares.items(), key=lambda item: item[1])
        if share >= _DOMINANT:
            # The text's ratio is its scripts' ratios by share: the others' kept as they are,
            # the main script's is what makes the sum come out as observed.
            rest = sum(self._ratio(s) * part for s, part in shares.items() if s != script)
            await self._update({script: max((observed - rest) / share, _LOWEST)})
            return
        # A mixed text: only a too-low estimate teaches anything, and then about every script.
        expected = self.factor(shares) / MARGIN
        if observed > expected:
            scale = observed / expected
            await self._update({s: self._ratio(s) * scale for s in shares})

    async def tighten(self, shares: dict[str, float]) -> None:
        """The server overflowed where we thought the prompt fit, without saying its count."""
        await self._update({s: self._ratio(s) * _TIGHTEN for s in shares}, force=True)

    def _ratio(self, script: str) -> float:
        learnt = self._ratios.get(script)
        if learnt is not None:
            return learnt[0]
        return 1.0 if self.native else DEFAULT_FACTORS[script] / MARGIN

    async def _update(self, observed: dict[str, float], force: bool = False) -> None:
        changed: Ratios = {}
        for script, value in observed.items():
            old, samples = self._ratios.get(script, (value, 0))
            ratio = (
                value if force or value >= old or samples == 0 else old - (old - value) * _EASE_DOWN
            )
            self._ratios[script] = (ratio, samples + 1)
            written = self._written.get(script)
            if force or written is None or abs(ratio - written) >= _WRITE_STEP * written:
                changed[script] = (ratio, samples + 1)
        if not changed:
            return
        await self._store.write(changed)
        self._written.update({script: ratio for script, (ratio, _) in changed.items()})
        log.info(
            "token calibration of %s: %s",
            self.model,
            ", ".join(f"{s} x{r:.2f}" for s, (r, _) in sorted(changed.items())),
        )
