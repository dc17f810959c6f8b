"""The unit of telemetry: one tester's reading at one instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """A source's output before it is placed on a line and a clock: what the tester measured."""

    unit_id: int
    cycle: int
    settings: tuple[float, float, float]
    sensors: tuple[float, ...]  # 21 values in catalogue order


@dataclass(frozen=True, slots=True)
class Sample:
    """A reading stamped with its line and generation time: one telemetry row."""

    line: str
    unit_id: int
    cycle: int
    ts: datetime
    settings: tuple[float, float, float]
    sensors: tuple[float, ...]

    def row(self) -> tuple[object, ...]:
        """Values in `catalog.TELEMETRY_COLUMNS` order, as COPY wants them."""
        return (self.line, self.unit_id, self.cycle, self.ts, *self.settings, *self.sensors)
