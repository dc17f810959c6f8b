"""What a demo run streams, checks and injects, decided from its flags before anything starts (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workloads.api.common import seconds
from workloads.api.line import Fault
from workloads.errors import DynolineError
from workloads.sentinel.rules import LoadedRule
from workloads.simulator.config import SimulatorConfig, SourceSpec

DEFAULT_DATA_DIR = Path(".dynoline") / "demo-pg"
DEFAULT_RULES = Path("examples") / "rules"
DEFAULT_PORT = 25432  # below Linux's ephemeral range, so a test server's random port never takes it
DEFAULT_DATABASE = "demo"
DEFAULT_INTERVAL = "5s"
DEFAULT_FAULT_AT_S = 60.0
DEFAULT_FAULT_UNIT = 17


@dataclass(frozen=True)
class Plan:
    config: SimulatorConfig
    rules: tuple[LoadedRule, ...]  # the pack's rules on the demo's line
    interval_s: float
    fault: Fault | None
    full_lives: bool = False

    @property
    def source_label(self) -> str:
        """What the units replay, in the words of the header and the view."""
        from .source import HEALTHY_CYCLES

        source = self.config.source
        if source.type != "cmapss":
            return f"the synthetic damage model (seed {getattr(source, 'seed', '?')})"
        if self.full_lives:
            return f"{source.dataset} run-to-failure lives"
        return f"{source.dataset}, each engine's first {HEALTHY_CYCLES} cycles on a loop"


def fault_unit(units: int, chosen: int | None) -> int:
    """Unit 17 (an FD001 engine with a long life, so its own wear does not compete), else the last unit."""
    if chosen is None:
        return DEFAULT_FAULT_UNIT if units > DEFAULT_FAULT_UNIT else units - 1
    if not 0 <= chosen < units:
        raise DynolineError(f"--fault-unit {chosen}: the line has units 0..{units - 1}")
    return chosen


def fault(units: int, at_s: float, unit: int | None) -> Fault:
    """A thermal runaway (T50 and T30 climbing 30 °R a minute) on one unit from `at_s` on."""
    if not (math.isfinite(at_s) and at_s >= 0):
        raise DynolineError(f"--fault-at must be a number of seconds >= 0, got {at_s:g}")
    start = f"{int(at_s)}s" if at_s >= 1 and at_s == int(at_s) else f"{max(1, round(at_s * 1000))}ms"
    return Fault(unit=fault_unit(units, unit), kind="thermalRunaway", start_after=start, ramp_per_minute=30.0)


def interval_seconds(text: str) -> float:
    try:
        value = seconds(text)
    except ValueError as exc:
        raise DynolineError(f"--interval: {exc}") from None
    if value < 1:
        raise DynolineError(f"--interval {text!r}: at least 1s")
    return value


def rules_for_line(rules: Sequence[LoadedRule], line: str, where: str) -> tuple[LoadedRule, ...]:
    """The rules that apply to `line`; none at all is an error, since the demo would then detect nothing."""
    mine = tuple(r for r in rules if r.rule.line == line)
    if not mine:
        named = ", ".join(sorted({r.rule.line for r in rules}))
        raise DynolineError(f"--rules {where}: no rule names line {line!r} (they name {named}); pass --line")
    return mine


def make_plan(
    *,
    line: str,
    units: int,
    rate_hz: float,
    source: SourceSpec,
    duration: float | None,
    metrics_port: int,
    rules: Sequence[LoadedRule],
    rules_where: str,
    interval: str,
    faults: bool,
    fault_at_s: float,
    fault_unit: int | None,
    spool: Path,
    full_lives: bool = False,
) -> Plan:
    injected = fault(units, fault_at_s, fault_unit) if faults and units >= 1 else None
    config = SimulatorConfig(
        line=line,
        units=units,
        rate_hz=rate_hz,
        source=source,
        faults=(injected,) if injected is not None else (),
        duration=duration,
        metrics_port=metrics_port,
        spool=spool,
    )
    rules_here = rules_for_line(rules, line, rules_where)
    return Plan(config, rules_here, interval_seconds(interval), injected, full_lives)


def connection_help(url: str, line: str, unit: int | None) -> list[str]:
    """The header: a URL to paste and the commands worth running beside the demo."""
    release = unit if unit is not None else 0
    return [
        f"database: {url}",
        "in a second terminal:",
        f"  dynoline alerts --open --line {line} --database-url {url}",
        f"  dynoline unit list --line {line} --quarantined --database-url {url}",
        f"  dynoline unit release --line {line} --unit {release} --database-url {url}",
    ]
