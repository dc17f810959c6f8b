"""What one simulator process streams, from flags, environment and an optional line file.

The operator mounts the line as a file (`--config /etc/dynoline/line.yaml`) and passes the shard
(`--shard $(ordinal)` or $DYNOLINE_SHARD, a number or a StatefulSet pod name ending in `-N`). The
file is either a DynoLine resource (line = metadata.name) or `{line: NAME, spec: {...}, simulator:
{...}}`; flags override the file. Everything is validated before anything is opened or written.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from workloads.api.common import DNS_LABEL_PATTERN, Model, seconds
from workloads.api.line import (
    CmapssSource,
    DatabaseRef,
    DynoLineSpec,
    Fault,
    SyntheticSource,
    interval_seconds,
)
from workloads.errors import DynolineError

CONFIG_ENV = "DYNOLINE_CONFIG"
SHARD_ENV = "DYNOLINE_SHARD"
SPOOL_ENV = "DYNOLINE_SPOOL"
METRICS_PORT_ENV = "DYNOLINE_METRICS_PORT"
DEFAULT_METRICS_PORT = 9108
DEFAULT_BATCH_ROWS = 5000
DEFAULT_MAX_LATENCY_MS = 20.0
QUEUE_SECONDS = 5  # default queue bound: this many seconds of the shard's rows
MAX_DEFAULT_QUEUE_ROWS = 200_000
DEFAULT_LATEST_INTERVAL_S = 1.0
MAX_LATEST_INTERVAL_S = 99.0

SourceSpec = CmapssSource | SyntheticSource


class LineSpec(DynoLineSpec):
    """A DynoLine spec as the simulator reads it: the database comes from the URL, not a Secret ref."""

    database: DatabaseRef | None = None  # type: ignore[assignment]


class Tuning(Model):
    """Per-process knobs the line file may carry (`simulator:` section); flags override them."""

    batch_rows: int | None = Field(default=None, ge=1, le=1_000_000)
    max_latency_ms: float | None = Field(default=None, ge=0, le=60_000)
    queue_rows: int | None = Field(default=None, ge=1, le=10_000_000)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    spool: str | None = None


class LineFile(Model):
    line: str = Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)
    spec: LineSpec
    simulator: Tuning = Field(default_factory=lambda: Tuning())


@dataclass(frozen=True)
class SimulatorConfig:
    line: str
    units: int
    rate_hz: float
    shard: int = 0
    shards: int = 1
    source: SourceSpec = field(default_factory=lambda: CmapssSource(type="cmapss"))
    faults: tuple[Fault, ...] = ()
    retention: timedelta = timedelta(days=7)
    paused: bool = False
    pace: bool = True
    ticks: int | None = None  # stop after this many ticks (required with pace=False)
    start: datetime | None = None  # ts of tick 0; default now (paced) or now - ticks/rate (backfill)
    duration: float | None = None  # stop after this many seconds
    batch_rows: int = DEFAULT_BATCH_ROWS
    max_latency: float = DEFAULT_MAX_LATENCY_MS / 1000
    queue_rows: int | None = None  # default: QUEUE_SECONDS of the shard's rows
    replay_rows: int = 20_000  # rows per replay transaction
    spool: Path | str | None = None  # a file, or a directory (existing, or text ending in "/")
    metrics_port: int = DEFAULT_METRICS_PORT  # 0: no HTTP endpoint
    shutdown_timeout: float = 20.0  # seconds to spend replaying the spool on the way out
    latest_interval: float = (
        DEFAULT_LATEST_INTERVAL_S  # telemetry_latest upkeep; 0: in each batch (latest.py)
    )

    def __post_init__(self) -> None:
        validate(self)

    @property
    def shard_units(self) -> int:
        return len(range(self.shard, self.units, self.shards))

    @property
    def queue_bound(self) -> int:
        if self.queue_rows is not None:
            return self.queue_rows
        wanted = math.ceil(QUEUE_SECONDS * self.shard_units * self.rate_hz)
        return max(1000, min(MAX_DEFAULT_QUEUE_ROWS, wanted))

    @property
    def spool_path(self) -> Path:
        name = f"{self.line}-shard{self.shard}.spool"
        if self.spool is None:
            return Path(".dynoline") / "spool" / name
        text = str(self.spool)
        if text.endswith(("/", os.sep)) or Path(text).is_dir():
            return Path(text) / name
        return Path(text)

    def with_(self, **changes: Any) -> SimulatorConfig:
        return replace(self, **changes)


def validate(c: SimulatorConfig) -> None:
    """One-line errors naming the flag at fault; raises DynolineError."""
    if not re.match(DNS_LABEL_PATTERN, c.line) or len(c.line) > 63:
        raise DynolineError(f"--line {c.line!r}: must be a DNS label (lowercase letters, digits, '-'; ≤ 63)")
    if not (isinstance(c.rate_hz, int | float) and math.isfinite(c.rate_hz) and c.rate_hz > 0):
        raise DynolineError(f"--rate must be a positive finite number of Hz, got {c.rate_hz}")
    if c.rate_hz > 100:
        raise DynolineError(f"--rate {c.rate_hz} Hz is above the 100 Hz a tester can do")
    if c.units < 1:
        raise DynolineError(f"--units must be at least 1, got {c.units}")
    if c.shards < 1:
        raise DynolineError(f"--shards must be at least 1, got {c.shards}")
    if not 0 <= c.shard < c.shards:
        raise DynolineError(f"--shard {c.shard} is out of range: shards are 0..{c.shards - 1}")
    if c.shards > c.units:
        raise DynolineError(f"--shards {c.shards} exceeds --units {c.units}: some shards would have no units")
    if c.batch_rows < 1:
        raise DynolineError(f"--batch-rows must be at least 1, got {c.batch_rows}")
    if not (math.isfinite(c.max_latency) and 0 <= c.max_latency <= 60):
        raise DynolineError(f"--max-latency-ms must be between 0 and 60000, got {c.max_latency * 1000:g}")
    if c.queue_rows is not None and c.queue_rows < 1:
        raise DynolineError(f"--queue-rows must be at least 1, got {c.queue_rows}")
    if c.ticks is not None and c.ticks < 1:
        raise DynolineError(f"--ticks must be at least 1, got {c.ticks}")
    if not c.pace and c.ticks is None:
        raise DynolineError("--no-pace needs --ticks: a backfill must know where to stop")
    if c.duration is not None and not (math.isfinite(c.duration) and c.duration > 0):
        raise DynolineError(f"--duration must be a positive number of seconds, got {c.duration}")
    if not (math.isfinite(c.shutdown_timeout) and c.shutdown_timeout >= 0):
        raise DynolineError(f"--shutdown-timeout must be a number of seconds ≥ 0, got {c.shutdown_timeout}")
    check_latest_interval(c.latest_interval)
    if not 0 <= c.metrics_port <= 65535:
        raise DynolineError(f"--metrics-port must be 0..65535, got {c.metrics_port}")
    if c.start is not None and c.start.tzinfo is None:
        raise DynolineError("--start must carry a time zone, e.g. 2026-01-01T00:00:00Z")
    for fault in c.faults:
        if fault.unit >= c.units:
            raise DynolineError(f"fault on unit {fault.unit}: the line has units 0..{c.units - 1}")


def check_latest_interval(seconds: float) -> None:
    """The one check of `--latest-interval-ms`, for the simulator and `bench stream`; raises DynolineError."""
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_LATEST_INTERVAL_S):
        raise DynolineError(
            f"--latest-interval-ms must be between 0 and {MAX_LATEST_INTERVAL_S * 1000:g},"
            f" got {seconds * 1000:g}"
        )


def parse_shard(text: str, where: str = "--shard") -> int:
    """`3`, or a StatefulSet pod name such as `line-a-sim-3` (its ordinal)."""
    value = text.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)  # a negative number is a range error, reported as such by validate()
    match = re.fullmatch(r".+-(\d+)", value)
    if not match:
        raise DynolineError(f"{where} {text!r}: expected a shard number or a pod name ending in -N")
    return int(match.group(1))


def parse_start(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DynolineError(f"--start {text!r}: not an ISO 8601 time such as 2026-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise DynolineError(f"--start {text!r}: give a time zone, e.g. a trailing Z for UTC")
    return parsed.astimezone(UTC)


def load_line_file(path: Path) -> LineFile:
    """A DynoLine resource, or `{line, spec, simulator}`, as YAML or JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DynolineError(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DynolineError(f"--config {path}: not valid YAML/JSON: {first}") from None
    if not isinstance(doc, dict):
        raise DynolineError(f"--config {path}: expected a mapping, got {type(doc).__name__}")
    if doc.get("kind") == "DynoLine":
        name = (doc.get("metadata") or {}).get("name")
        doc = {"line": name, "spec": doc.get("spec") or {}}
    try:
        return LineFile.model_validate(doc)
    except ValidationError as exc:
        from workloads.cli import format_validation_error

        raise DynolineError(format_validation_error(exc, where=f"--config {path}")) from None


def from_line_file(lf: LineFile, shard: int) -> SimulatorConfig:
    spec, tune = lf.spec, lf.simulator
    return SimulatorConfig(
        line=lf.line,
        units=spec.units,
        rate_hz=spec.rate_hz,
        shard=shard,
        shards=spec.shards,
        source=spec.source,
        faults=tuple(spec.faults),
        retention=timedelta(seconds=seconds(spec.retention)),
        paused=spec.paused,
        latest_interval=interval_seconds(spec.latest_interval),
        batch_rows=tune.batch_rows or DEFAULT_BATCH_ROWS,
        max_latency=(tune.max_latency_ms if tune.max_latency_ms is not None else DEFAULT_MAX_LATENCY_MS)
        / 1000,
        queue_rows=tune.queue_rows,
        metrics_port=tune.metrics_port if tune.metrics_port is not None else DEFAULT_METRICS_PORT,
        spool=tune.spool or None,
    )


def source_spec(kind: str, seed: int | None) -> SourceSpec:
    if kind == "cmapss":
        if seed is not None:
            raise DynolineError("--seed applies to --source synthetic only")
        return CmapssSource(type="cmapss")
    if kind == "synthetic":
        if seed is not None and not 0 <= seed <= 2**31 - 1:
            raise DynolineError(f"--seed must be between 0 and {2**31 - 1}, got {seed}")
        return SyntheticSource(type="synthetic", seed=42 if seed is None else seed)
    raise DynolineError(f"--source {kind!r}: expected cmapss or synthetic")


def env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise DynolineError(f"${name}={raw!r}: expected a whole number")
    return int(raw)
