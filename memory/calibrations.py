"""Storage of the token calibration factors learnt per model and script (`bot/calibration.py`),
so that a restart, or another process, starts from what was learnt."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from memory.tables import Calibration, utcnow
from memory.upsert import upsert

# script → (ratio, samples)
Ratios = dict[str, tuple[float, int]]


class CalibrationStore:
    def __init__(self, engine: AsyncEngine, model: str) -> None:
        self._engine = engine
        self.model = model
        # Processes learning the same model at once each leave their latest value.
        self._upsert = upsert(
            engine,
            Calibration,
            ["model", "script"],
            lambda proposed: {name: proposed[name] for name in ("ratio", "samples", "updated_at")},
        )

    async def load(self) -> Ratios:
        query = select(Calibration.script, Calibration.ratio, Calibration.samples).where(
            Calibration.model == self.model
        )
        async with self._engine.connect() as connection:
            rows = await connection.execute(query)
            return {script: (ratio, samples) for script, ratio, samples in rows}

    async def write(self, ratios: Ratios) -> None:
        now = utcnow()
        rows = [
            {"model": self.model, "script": script, "ratio": r, "samples": n, "updated_at": now}
            for script, (r, n) in ratios.items()
        ]
        async with self._engine.begin() as connection:
            await connection.execute(self._upsert, rows)
