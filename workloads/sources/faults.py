"""Injected anomalies: wrap any source so a chosen unit misbehaves from a chosen tick on.

Detection rules are only worth something if they fire on the failures they are written for; faults let
a line produce such a failure on demand, on one unit, at a known time, so an alert can be checked
against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from workloads.api.common import seconds
from workloads.api.line import Fault
from workloads.catalog import sensor
from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sources import Source

# Share of the ramp each channel sees: the turbine outlet (T50) and the HPC outlet (T30) run away
# together, the LPC outlet (T24) upstream follows weakly.
THERMAL_RUNAWAY_WEIGHTS: dict[str, float] = {"T50": 1.0, "T30": 1.0, "T24": 0.25}


class InjectedFault(Protocol):
    @property
    def unit(self) -> int:
        """The line unit the fault is on; no other unit is touched."""
        ...

    def apply(self, reading: Reading, tick: int) -> Reading:
        """`reading` of this fault's unit at `tick`, as the fault makes it look."""
        ...


@dataclass(frozen=True)
class ThermalRunaway:
    """Hot-section temperatures climb by `ramp_per_tick` °R per tick from `start_tick` on (unbounded)."""

    unit: int
    start_tick: int
    ramp_per_tick: float

    def __post_init__(self) -> None:
        if self.unit < 0 or self.start_tick < 0:
            raise DynolineError(
                f"thermal runaway: unit ({self.unit}) and start tick ({self.start_tick}) must be >= 0"
            )
        if not math.isfinite(self.ramp_per_tick):
            raise DynolineError(f"thermal runaway: ramp per tick must be finite, got {self.ramp_per_tick}")

    @classmethod
    def from_spec(cls, fault: Fault, rate_hz: float) -> ThermalRunaway:
        """A DynoLine fault in wall-clock terms → ticks, where tick k is k / rate_hz after start."""
        check_rate(rate_hz)
        start_tick = math.ceil(round(seconds(fault.start_after) * rate_hz, 9))
        return cls(fault.unit, start_tick, fault.ramp_per_minute / 60.0 / rate_hz)

    def offset(self, tick: int) -> float:
        """The added °R at `tick` (full weight): one ramp step on the start tick, growing by one per tick."""
        return 0.0 if tick < self.start_tick else self.ramp_per_tick * (tick - self.start_tick + 1)

    def apply(self, reading: Reading, tick: int) -> Reading:
        offset = self.offset(tick)
        if offset == 0.0:
            return reading
        sensors = list(reading.sensors)
        for index, weight in _WEIGHTS:
            sensors[index] += weight * offset
        return Reading(reading.unit_id, reading.cycle, reading.settings, tuple(sensors))


_WEIGHTS: tuple[tuple[int, float], ...] = tuple(
    (sensor(name).index - 1, weight) for name, weight in THERMAL_RUNAWAY_WEIGHTS.items()
)


def check_rate(rate_hz: float) -> None:
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DynolineError(f"rate must be a positive number of samples per second, got {rate_hz}")


def from_specs(faults: Iterable[Fault], rate_hz: float) -> list[InjectedFault]:
    """Build the injected faults of a DynoLine spec (the rate turns their durations into ticks)."""
    check_rate(rate_hz)
    built: list[InjectedFault] = []
    for fault in faults:
        if fault.kind == "thermalRunaway":
            built.append(ThermalRunaway.from_spec(fault, rate_hz))
        else:  # pragma: no cover - the model admits only the kinds above
            raise DynolineError(f"unknown fault kind {fault.kind!r}")
    return built


class FaultedSource:
    """`inner` with faults applied; units without a fault pass through untouched."""

    def __init__(self, inner: Source, faults: Iterable[InjectedFault]) -> None:
        self.inner = inner
        self._by_unit: dict[int, list[InjectedFault]] = {}
        for fault in faults:
            self._by_unit.setdefault(fault.unit, []).append(fault)

    def reading(self, unit_id: int, tick: int) -> Reading | None:
        reading = self.inner.reading(unit_id, tick)
        faults = self._by_unit.get(unit_id)
        if reading is None or faults is None:
            return reading
        for fault in faults:
            reading = fault.apply(reading, tick)
        return reading
