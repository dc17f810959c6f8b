"""The health index: a linear multi-sensor degradation score learned from run-to-failure data.

Target: 0 while a unit is healthy (remaining life ≥ `knee_rul` cycles), rising linearly to 1 at
failure, the piecewise-linear RUL target common in the C-MAPSS literature. The score is an ordinary
least-squares fit of that target on standardised sensor values, so it is one linear expression the
sentinel can evaluate inside PostgreSQL: `intercept + sum_j weight_j * (x_j - center_j) / scale_j`.
The model is a small JSON file (`dynoline sentinel fit --dataset … --out …`) that rules reference.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from workloads.api.common import Finite, Model
from workloads.catalog import SENSORS, sensor
from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sentinel.regimes import RegimeModel, fit_regimes

FORMAT: Literal["dynoline.dev/health-index/v1"] = "dynoline.dev/health-index/v1"
DEFAULT_KNEE_RUL = 125
# The 14 FD001 channels that move with degradation (the other 7 are constant or nearly so).
INFORMATIVE = (
    "T24", "T30", "T50", "P30", "Nf", "Nc", "Ps30", "phi", "NRf", "NRc", "BPR", "htBleed", "W31", "W32",
)  # fmt: skip
_RIDGE = 1e-6  # keeps the normal equations solvable when two channels are nearly collinear (Nf, NRf)


class ModelSensor(Model):
    model_config = ConfigDict(strict=True)

    name: str
    center: Finite
    scale: Annotated[float, Field(gt=0)]
    weight: Finite

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            return sensor(value).name
        except DynolineError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("scale")
    @classmethod
    def _finite_scale(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class Target(Model):
    model_config = ConfigDict(strict=True)

    kind: Literal["piecewise-linear"] = "piecewise-linear"
    knee_rul: int = Field(default=DEFAULT_KNEE_RUL, ge=1, le=100_000)


class HealthModel(Model):
    """The file format; `score` is the reference implementation the SQL expression must match."""

    model_config = ConfigDict(strict=True)

    format: Literal["dynoline.dev/health-index/v1"]
    description: str = Field(default="", max_length=2000)
    target: Target = Field(default_factory=lambda: Target())
    intercept: Finite
    sensors: list[ModelSensor] = Field(min_length=1, max_length=len(SENSORS))
    training: dict[str, Any] = Field(default_factory=lambda: {})
    # Per-regime standardisation applied before the linear score (a multi-point line); None: raw values.
    regimes: RegimeModel | None = None

    @model_validator(mode="after")
    def _distinct(self) -> HealthModel:
        names = [s.name for s in self.sensors]
        if len(set(names)) != len(names):
            raise ValueError("sensors must not repeat")
        if self.regimes is not None and set(names) - set(self.regimes.means):
            raise ValueError(f"regimes lack sensors {sorted(set(names) - set(self.regimes.means))}")
        return self

    def score(self, values: Mapping[str, float], settings: Sequence[float] | None = None) -> float:
        """The score of one sample, from sensor name → value (and its settings, with regimes)."""
        if self.regimes is not None:
            if settings is None:
                raise ValueError("a regime model scores a sample with its settings")
            r = self.regimes.assign(settings)
            values = {s.name: self.regimes.normalise(s.name, values[s.name], r) for s in self.sensors}
        return self.intercept + sum(s.weight * (values[s.name] - s.center) / s.scale for s in self.sensors)

    def score_reading(self, reading: Reading) -> float:
        return self.score({s.name: reading.sensors[sensor(s.name).index - 1] for s in self.sensors},
                          reading.settings)  # fmt: skip

    def terms(self) -> list[tuple[str, float, float]]:
        """(column, center, weight / scale) per sensor: the SQL form `intercept + sum a * (col - center)`."""
        return [(sensor(s.name).column, s.center, s.weight / s.scale) for s in self.sensors]


def parse_model(text: str, where: str) -> HealthModel:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DynolineError(f"{where}: not a JSON health-index model: {exc}") from None
    if not isinstance(data, dict):
        raise DynolineError(f"{where}: a health-index model is a JSON object")
    try:
        return HealthModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise DynolineError(f"{where}: invalid health-index model: {loc}: {first['msg']}") from None


def packaged_models() -> list[str]:
    return sorted(
        p.name[: -len(".json")]
        for p in resources.files("workloads.sentinel").joinpath("models").iterdir()
        if p.name.endswith(".json")
    )


def resolve_model(ref: str, base_dir: Path | None) -> tuple[HealthModel, str]:
    """A rule's `model` → (model, where it came from). Bare names are models shipped with dynoline."""
    if "/" not in ref and not ref.endswith(".json"):
        entry = resources.files("workloads.sentinel").joinpath("models", f"{ref}.json")
        if not entry.is_file():
            known = ", ".join(packaged_models()) or "none"
            raise DynolineError(f"unknown health-index model {ref!r}: shipped models are {known}")
        return parse_model(entry.read_text(encoding="utf-8"), f"model {ref}"), f"builtin:{ref}"
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DynolineError(f"health-index model {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DynolineError(f"health-index model {str(path)!r}: cannot read: {exc}") from None
    return parse_model(text, str(path)), str(path)


# --- fitting -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    model: HealthModel
    r2: float


def degradation_target(rul: int, knee: int) -> float:
    """0 while healthy (RUL ≥ knee), 1 at failure (RUL 0)."""
    return min(1.0, max(0.0, 1.0 - rul / knee))


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the system is about 15 by 15: no need for numpy)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12:
            raise DynolineError("health-index fit is singular: two sensors carry the same information")
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def fit(
    trajectories: Mapping[int, Sequence[Reading]],
    *,
    sensors: Sequence[str] = INFORMATIVE,
    knee_rul: int = DEFAULT_KNEE_RUL,
    source: str = "",
    regimes: int | None = None,
) -> Fit:
    """Least-squares fit of the degradation target on run-to-failure trajectories (last cycle = failure);
    with `regimes`, on channels standardised per operating regime (k-means of the settings)."""
    if knee_rul < 1:
        raise DynolineError(f"knee must be at least 1 cycle, got {knee_rul}")
    chosen = [sensor(name) for name in sensors]
    if len({s.name for s in chosen}) != len(chosen):
        raise DynolineError("health-index sensors must not repeat")
    if not chosen:
        raise DynolineError("a health index needs at least one sensor")
    xs: list[list[float]] = []
    ys: list[float] = []
    for readings in trajectories.values():
        last = readings[-1].cycle
        for r in readings:
            xs.append([r.sensors[s.index - 1] for s in chosen])
            ys.append(degradation_target(last - r.cycle, knee_rul))
    if len(xs) <= len(chosen) + 1:
        raise DynolineError(f"too few samples ({len(xs)}) to fit {len(chosen)} sensors")
    regime_model: RegimeModel | None = None
    if regimes is not None:
        settings = [r.settings for readings in trajectories.values() for r in readings]
        channels = {s.name: [x[j] for x in xs] for j, s in enumerate(chosen)}
        regime_model = fit_regimes(settings, channels, [y == 0.0 for y in ys], regimes)
        assigned = [regime_model.assign(st) for st in settings]
        xs = [[regime_model.normalise(s.name, v, g) for s, v in zip(chosen, x, strict=True)]
              for x, g in zip(xs, assigned, strict=True)]  # fmt: skip
    centers = [statistics.fmean(col) for col in zip(*xs, strict=True)]
    scales = [statistics.pstdev(col, mu) for col, mu in zip(zip(*xs, strict=True), centers, strict=True)]
    for s, scale in zip(chosen, scales, strict=True):
        if scale == 0:
            raise DynolineError(f"sensor {s.name} is constant in the training data; leave it out")
    k = len(chosen) + 1
    ata = [[0.0] * k for _ in range(k)]
    aty = [0.0] * k
    for x, y in zip(xs, ys, strict=True):
        row = [1.0] + [(v - c) / s for v, c, s in zip(x, centers, scales, strict=True)]
        for i in range(k):
            ri = row[i]
            aty[i] += ri * y
            ata_i = ata[i]
            for j in range(i, k):
                ata_i[j] += ri * row[j]
    for i in range(k):
        for j in range(i):
            ata[i][j] = ata[j][i]
        if i:
            ata[i][i] += _RIDGE * len(xs)
    coef = _solve(ata, aty)
    model_sensors = [
        ModelSensor(name=s.name, center=c, scale=sc, weight=w)
        for s, c, sc, w in zip(chosen, centers, scales, coef[1:], strict=True)
    ]
    draft = HealthModel(
        format=FORMAT, intercept=coef[0], sensors=model_sensors, target=Target(knee_rul=knee_rul)
    )
    scores = [draft.score(dict(zip((s.name for s in chosen), x, strict=True))) for x in xs]  # normalised xs
    draft = draft.model_copy(update={"regimes": regime_model})
    mean_y = statistics.fmean(ys)
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    ss_res = sum((y - p) ** 2 for y, p in zip(ys, scores, strict=True))
    r2 = 1.0 - ss_res / ss_tot if ss_tot else 0.0
    healthy = sorted(p for p, y in zip(scores, ys, strict=True) if y == 0.0)
    training = {
        "source": source,
        "units": len(trajectories),
        "samples": len(xs),
        "r2": round(r2, 4),
        "healthy_samples": len(healthy),
        "healthy_score_p50": round(_quantile(healthy, 0.5), 4) if healthy else None,
        "healthy_score_p99": round(_quantile(healthy, 0.99), 4) if healthy else None,
        "healthy_score_max": round(healthy[-1], 4) if healthy else None,
        "regimes": None if regime_model is None else len(regime_model.centroids),
    }
    model = draft.model_copy(
        update={
            "description": f"linear health index fitted on {source or 'run-to-failure data'}:"
            f" 0 = healthy (RUL ≥ {knee_rul}), 1 = failure",
            "training": training,
        }
    )
    return Fit(model=model, r2=r2)


def _quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def dump_model(model: HealthModel) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True), indent=2) + "\n"
