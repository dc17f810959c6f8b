"""Out-of-sample discipline: k folds by unit, test-like truncations, and the remaining-life error.

A pack tuned and a health index fitted on the same units score in-sample. Here every health-index
model a pack references is refitted on the other folds (same sensors, same knee) before the held-out
fold is replayed, so each unit is judged by a model that never saw it. Truncating each held-out unit
the way the C-MAPSS test files are (the record stops some cycles before failure; here 5 to 150, fixed
per unit) turns a run-to-failure file into a second test set with known remaining life.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from workloads.api.common import seconds
from workloads.api.rule import RulCondition
from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sentinel import rul
from workloads.sentinel.health_index import HealthModel, fit
from workloads.sentinel.rules import LoadedRule

Trajectories = Mapping[int, Sequence[Reading]]
MIN_CYCLES = 31  # the shortest C-MAPSS test record
TRUNCATE_RUL = (5, 150)


def split(units: Sequence[int], k: int) -> list[list[int]]:
    """k folds of units, interleaved by unit id (so every fold spans the file)."""
    ordered = sorted(units)
    if not 2 <= k <= len(ordered):
        raise DynolineError(f"--folds must be between 2 and the number of units ({len(ordered)}), got {k}")
    return [ordered[i::k] for i in range(k)]


def truncation_rul(unit: int, life: int) -> int:
    """Where a unit's record stops: a fixed, spread-out remaining life in 5..150 (a hash of its id),
    leaving at least 31 cycles observed."""
    lo, hi = TRUNCATE_RUL
    wanted = lo + (unit * 7919) % (hi - lo + 1)
    return max(1, min(wanted, life - MIN_CYCLES))


def truncate(trajectories: Trajectories) -> tuple[dict[int, Sequence[Reading]], dict[int, int]]:
    """Run-to-failure units cut short like a test file; with the true remaining life at the cut."""
    cut: dict[int, Sequence[Reading]] = {}
    ruls: dict[int, int] = {}
    for unit, readings in trajectories.items():
        r = truncation_rul(unit, len(readings))
        cut[unit], ruls[unit] = readings[: len(readings) - r], r
    return cut, ruls


def refit(rules: Sequence[LoadedRule], training: Trajectories, source: str) -> list[LoadedRule]:
    """The rules with every model refitted on `training` (same sensors and knee as the shipped model)."""
    fitted: dict[str, HealthModel] = {}
    out = []
    for r in rules:
        if r.model is None or r.model_source is None:
            out.append(r)
            continue
        if r.model_source not in fitted:
            sensors = [s.name for s in r.model.sensors]
            k = None if r.model.regimes is None else len(r.model.regimes.centroids)
            fitted[r.model_source] = fit(
                training, sensors=sensors, knee_rul=r.model.target.knee_rul, source=source, regimes=k
            ).model
        out.append(
            LoadedRule(r.rule, r.source, fitted[r.model_source], f"{r.model_source} refitted on {source}")
        )
    return out


def scores(model: HealthModel, readings: Sequence[Reading]) -> list[float]:
    return [model.score_reading(r) for r in readings]


def rul_errors(
    trajectories: Trajectories, ruls: Mapping[int, int], rules: Sequence[LoadedRule]
) -> dict[str, dict[str, Any]]:
    """Per rul rule: the estimate at each unit's last observed cycle against its true remaining life
    (RMSE, and RMSE against the life capped at the knee, the C-MAPSS literature's usual target). Uses
    `rul.estimate`, the reference the SQL twin matches; the window at 1 Hz is its last `window` cycles."""
    out: dict[str, dict[str, Any]] = {}
    for r in rules:
        cond = r.rule.condition
        if isinstance(cond, RulCondition) and r.model is not None:
            width = max(1, int(seconds(cond.window)))
            out[r.rule.name] = estimate_errors(trajectories, ruls, r.model, width, cond.confidence)
    return out


def estimate_errors(
    trajectories: Trajectories, ruls: Mapping[int, int], model: HealthModel, width: int, confidence: float
) -> dict[str, Any]:
    knee = float(model.target.knee_rul)
    errors: list[float] = []
    capped: list[float] = []
    for unit, readings in trajectories.items():
        recent = readings[-width:]
        cycles = [float(x.cycle) for x in recent]
        got = rul.estimate(cycles, scores(model, recent), horizon=knee, confidence=confidence)
        if got is not None:
            errors.append(got.cycles - ruls[unit])
            capped.append(got.cycles - min(knee, ruls[unit]))
    return {
        "units": len(errors),
        "rmse_cycles": _rmse(errors),
        "rmse_capped_cycles": _rmse(capped),
        "mean_error_cycles": round(sum(errors) / len(errors), 2) if errors else None,
        "capped_at": knee,
    }


def kfold_fit(
    trajectories: Trajectories,
    k: int,
    *,
    sensors: Sequence[str],
    knee_rul: int,
    width: int = 20,
    regimes: int | None = None,
) -> dict[str, Any]:
    """`sentinel fit --folds K`: the health index fitted without each fold and scored on it (R², healthy
    p99), and the remaining-life estimator (`width` cycles, 90%) on the fold's truncated units."""
    per_fold = []
    for units in split(list(trajectories), k):
        training = {u: r for u, r in trajectories.items() if u not in units}
        held = {u: trajectories[u] for u in units}
        model = fit(training, sensors=sensors, knee_rul=knee_rul, regimes=regimes).model
        cut, ruls = truncate(held)
        per_fold.append({"units": len(units), **model_scores(model, held),
                         "rul": estimate_errors(cut, ruls, model, width, 0.9)})  # fmt: skip
    n = sum(f["rul"]["units"] for f in per_fold)
    return {
        "folds": k,
        "r2_mean": round(sum(f["r2"] for f in per_fold) / k, 4),
        "healthy_score_p99_max": max(f["healthy_score_p99"] or 0.0 for f in per_fold),
        "rul_window_cycles": width,
        "rul_rmse_cycles": round(
            math.sqrt(sum(f["rul"]["units"] * f["rul"]["rmse_cycles"] ** 2 for f in per_fold) / n), 2
        ),
        "rul_rmse_capped_cycles": round(
            math.sqrt(sum(f["rul"]["units"] * f["rul"]["rmse_capped_cycles"] ** 2 for f in per_fold) / n), 2
        ),
        "per_fold": per_fold,
    }


def _rmse(errors: Sequence[float]) -> float | None:
    return round(math.sqrt(sum(e * e for e in errors) / len(errors)), 2) if errors else None


def model_scores(model: HealthModel, held_out: Trajectories) -> dict[str, Any]:
    """The health index on units it was not fitted on: R² against the target, healthy-score p99."""
    knee = model.target.knee_rul
    ys: list[float] = []
    ps: list[float] = []
    for readings in held_out.values():
        last = readings[-1].cycle
        ys += [min(1.0, max(0.0, 1.0 - (last - x.cycle) / knee)) for x in readings]
        ps += scores(model, readings)
    mean = sum(ys) / len(ys)
    ss_tot = sum((y - mean) ** 2 for y in ys)
    r2 = 1.0 - sum((y - p) ** 2 for y, p in zip(ys, ps, strict=True)) / ss_tot if ss_tot else 0.0
    healthy = sorted(p for p, y in zip(ps, ys, strict=True) if y == 0.0)
    p99 = healthy[min(len(healthy) - 1, math.ceil(0.99 * len(healthy)) - 1)] if healthy else None
    return {"r2": round(r2, 4), "healthy_score_p99": None if p99 is None else round(p99, 4)}
