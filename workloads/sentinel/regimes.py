"""Operating-regime baselines: which operating point a sample was taken at, and its channels per regime.

A line that runs units at several operating points (C-MAPSS FD002/FD004: six) moves every channel with
the point far more than with wear, so a raw level means nothing. The regime is found from the three
operating settings by k-means on the standardised settings (nearest centroid at run time), and each
channel is standardised with the mean and standard deviation of its healthy samples in that regime.
The model is stored with the health-index JSON (`regimes`); `assign` and `normalise` are the
references the SQL twins (`regime_sql`, `normalised_sql`) must match.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Annotated

from psycopg import sql
from pydantic import ConfigDict, Field, model_validator

from workloads.api.common import Finite, Model
from workloads.catalog import SETTING_COLUMNS, sensor
from workloads.errors import DynolineError
from workloads.sentinel.statement import Binder

MAX_REGIMES = 16
SD_FLOOR = 1e-6  # relative to the level: a channel constant within a regime does not divide by zero
_ITERATIONS = 50


class RegimeModel(Model):
    model_config = ConfigDict(strict=True)

    setting_center: list[Finite] = Field(min_length=3, max_length=3)
    setting_scale: list[Annotated[float, Field(gt=0)]] = Field(min_length=3, max_length=3)
    centroids: list[list[Finite]] = Field(min_length=1, max_length=MAX_REGIMES)  # standardised settings
    means: dict[str, list[Finite]]  # sensor name → its mean in each regime
    sds: dict[str, list[Annotated[float, Field(gt=0)]]]

    @model_validator(mode="after")
    def _shapes(self) -> RegimeModel:
        k = len(self.centroids)
        if any(len(c) != 3 for c in self.centroids):
            raise ValueError("every centroid has the 3 standardised settings")
        if set(self.means) != set(self.sds):
            raise ValueError("means and sds must name the same sensors")
        for name in self.means:
            sensor(name)  # an unknown sensor is refused with the catalogue's message
            if len(self.means[name]) != k or len(self.sds[name]) != k:
                raise ValueError(f"{name}: one mean and one sd per regime ({k})")
        return self

    def assign(self, settings: Sequence[float]) -> int:
        """The 0-based regime of one sample: its nearest centroid (the first on a tie)."""
        z = [(s - c) / sc for s, c, sc in zip(settings, self.setting_center, self.setting_scale, strict=True)]
        dist = [sum((a - b) ** 2 for a, b in zip(z, c, strict=True)) for c in self.centroids]
        return min(range(len(dist)), key=dist.__getitem__)

    def normalise(self, name: str, value: float, regime: int) -> float:
        return (value - self.means[name][regime]) / self.sds[name][regime]


def _kmeans(points: Sequence[Sequence[float]], k: int) -> list[list[float]]:
    """Lloyd's k-means from a farthest-point start (deterministic: the same data gives the same model)."""
    centroids = [list(points[0])]
    nearest = [math.inf] * len(points)
    while len(centroids) < k:
        last = centroids[-1]
        for i, p in enumerate(points):
            nearest[i] = min(nearest[i], sum((a - b) ** 2 for a, b in zip(p, last, strict=True)))
        centroids.append(list(points[max(range(len(points)), key=nearest.__getitem__)]))
    for _ in range(_ITERATIONS):
        groups: list[list[Sequence[float]]] = [[] for _ in centroids]
        for p in points:
            d = [sum((a - b) ** 2 for a, b in zip(p, c, strict=True)) for c in centroids]
            groups[min(range(k), key=d.__getitem__)].append(p)
        moved = [[statistics.fmean(col) for col in zip(*g, strict=True)] if g else c
                 for g, c in zip(groups, centroids, strict=True)]  # fmt: skip
        if moved == centroids:
            break
        centroids = moved
    return centroids


def fit_regimes(
    settings: Sequence[Sequence[float]],
    channels: Mapping[str, Sequence[float]],
    healthy: Sequence[bool],
    k: int,
) -> RegimeModel:
    """k regimes from all samples' settings; per-regime channel statistics from the healthy samples."""
    if not 1 <= k <= MAX_REGIMES:
        raise DynolineError(f"regimes must be between 1 and {MAX_REGIMES}, got {k}")
    if len(settings) < k:
        raise DynolineError(f"{len(settings)} samples cannot make {k} regimes")
    cols = list(zip(*settings, strict=True))
    center = [statistics.fmean(c) for c in cols]
    scale = [statistics.pstdev(c, m) or 1.0 for c, m in zip(cols, center, strict=True)]
    z = [[(v - m) / s for v, m, s in zip(row, center, scale, strict=True)] for row in settings]
    draft = RegimeModel(setting_center=center, setting_scale=scale, centroids=_kmeans(z, k), means={}, sds={})
    regime = [draft.assign(row) for row in settings]
    means: dict[str, list[float]] = {}
    sds: dict[str, list[float]] = {}
    for name, values in channels.items():
        means[name], sds[name] = [], []
        for r in range(k):
            chosen = [v for v, g, h in zip(values, regime, healthy, strict=True) if g == r and h]
            if len(chosen) < 2:
                raise DynolineError(f"regime {r + 1} has fewer than 2 healthy samples: fit fewer regimes")
            mean = statistics.fmean(chosen)
            means[name].append(mean)
            sds[name].append(max(statistics.pstdev(chosen, mean), SD_FLOOR * max(abs(mean), 1.0)))
    return draft.model_copy(update={"means": means, "sds": sds})


def regime_sql(b: Binder, model: RegimeModel) -> sql.Composable:
    """The 1-based regime of a telemetry row: a CASE over squared distances to the centroids."""
    z = [
        sql.SQL("(({} - {}) / {})").format(sql.Identifier(col), b.bind(c), b.bind(s))
        for col, c, s in zip(SETTING_COLUMNS, model.setting_center, model.setting_scale, strict=True)
    ]
    dist = [
        sql.SQL("(" + " + ".join(["power({} - {}, 2)"] * 3) + ")").format(
            *(part for zi, ci in zip(z, centroid, strict=True) for part in (zi, b.bind(ci)))
        )
        for centroid in model.centroids
    ]
    k = len(dist)
    if k == 1:
        return sql.SQL("1")
    whens = [
        sql.SQL("WHEN {} THEN {}").format(
            sql.SQL(" AND ").join(sql.SQL("{} <= {}").format(dist[i], dist[j]) for j in range(i + 1, k)),
            sql.Literal(i + 1),
        )
        for i in range(k - 1)
    ]
    return sql.SQL("(CASE {} ELSE {} END)").format(sql.SQL(" ").join(whens), sql.Literal(k))


def by_regime_sql(b: Binder, model: RegimeModel, branches: Sequence[sql.Composable]) -> sql.Composable:
    """`CASE regime WHEN 1 THEN branches[0] …`: the regime is computed once per row (a simple CASE)."""
    whens = [sql.SQL("WHEN {} THEN {}").format(sql.Literal(i + 1), e) for i, e in enumerate(branches)]
    return sql.SQL("(CASE {} {} END)").format(regime_sql(b, model), sql.SQL(" ").join(whens))


def normalised_sql(b: Binder, model: RegimeModel, name: str) -> sql.Composable:
    """`(column - mean) / sd` with the statistics of the row's regime, each bound."""
    col = sql.Identifier(sensor(name).column)
    return by_regime_sql(b, model, [
        sql.SQL("(({} - {}) / {})").format(col, b.bind(m), b.bind(sd))
        for m, sd in zip(model.means[name], model.sds[name], strict=True)
    ])  # fmt: skip
