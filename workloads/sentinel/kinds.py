"""One SQL judgement per condition kind: the statistic a rule compares, and its firing expression.

`scan` (compile.py) asks `judge` for each rule; each helper adds the aggregates it needs to the
shared `Binder` (identical aggregates are shared between rules) and returns a `Judgement` over the
aggregate aliases. The per-sample kinds aggregate the new samples (`fresh`), the windowed kinds the
trailing window (`tail`); `Windows` filters each to its own rows of the scan it rides on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from psycopg import sql

from workloads.api.common import seconds
from workloads.api.rule import (
    DriftCondition,
    HealthIndexCondition,
    RateOfChangeCondition,
    RulCondition,
    SustainedCondition,
    ThresholdCondition,
    condition_bound,
    upward,
)
from workloads.catalog import sensor
from workloads.sentinel import rul as rul_model
from workloads.sentinel.regimes import by_regime_sql, normalised_sql
from workloads.sentinel.rules import LoadedRule
from workloads.sentinel.statement import Binder, op_sql

Z_FLOOR = 1e-6  # smallest baseline standard deviation used as a divisor (a constant channel)


@dataclass(frozen=True)
class Judgement:
    """A rule's statistic per unit, and whether it fires (NULL counts as not firing)."""

    statistic: sql.Composable
    fired: sql.Composable
    extras: tuple[tuple[str, sql.Composable], ...] = ()  # more output columns `r{i}_{name}` (evidence)


@dataclass
class Windows:
    """Where each aggregate's rows lie in the scan it is computed in, as `FILTER` clauses.

    The windowed aggregates read a scan from `scan_from` to `until`; a window that starts later is a
    filter. When the new samples ride on that same scan (`since` given: one scan for both), the
    per-sample aggregates filter to `ts > since` unless the scan starts there.
    """

    binder: Binder
    until: datetime
    scan_from: datetime | None  # start of the scan the windowed aggregates read (None: no such scan)
    since: datetime | None = None  # the new samples' start, when they share that scan
    _starts: dict[datetime, sql.Placeholder] = field(default_factory=dict)

    def _after(self, start: datetime) -> sql.Placeholder:
        if start not in self._starts:
            self._starts[start] = self.binder.bind(start)
        return self._starts[start]

    def _clause(self, start: datetime | None, test: sql.Composable | None) -> sql.Composable:
        tests = [test] if test is not None else []
        if start is not None and start != self.scan_from:
            tests.append(sql.SQL("ts > {}").format(self._after(start)))
        if not tests:
            return sql.SQL("")
        return sql.SQL(" FILTER (WHERE {})").format(sql.SQL(" AND ").join(tests))

    def filter(self, span: float) -> sql.Composable:
        """`FILTER (WHERE ts > until - span)`, or nothing for a window that is the whole scan."""
        return self._clause(self.until - timedelta(seconds=span), None)

    def filter_and(self, span: float, test: sql.Composable) -> sql.Composable:
        """`FILTER (WHERE test)` within the window of `span`."""
        return self._clause(self.until - timedelta(seconds=span), test)

    def new(self, test: sql.Composable | None = None) -> sql.Composable:
        """`FILTER` for a per-sample aggregate: the new samples (and `test`), when they share the scan."""
        return self._clause(self.since, test)


def window_seconds(rule: LoadedRule) -> float:
    """How far back before `until` a windowed rule looks (0 for per-sample kinds)."""
    cond = rule.rule.condition
    if isinstance(cond, RateOfChangeCondition | DriftCondition | HealthIndexCondition | RulCondition):
        return seconds(cond.window)
    return 0.0


def _compare(stat: sql.Composable, op: str, bound: sql.Placeholder) -> sql.Composed:
    return sql.SQL("{} {} {}").format(stat, op_sql(op), bound)


def per_sample(
    b: Binder, w: Windows, i: int, cond: ThresholdCondition | SustainedCondition, bound: sql.Placeholder
) -> Judgement:
    """The extreme of the new samples; a `for` rule also needs its firing samples to span `for`."""
    col_name = sensor(cond.sensor).column
    col = sql.Identifier(col_name)
    fn = sql.SQL("max") if upward(cond.op) else sql.SQL("min")
    stat = b.agg(("extreme", col_name, upward(cond.op)), sql.SQL("{}({}){}").format(fn, col, w.new()))
    fired: sql.Composable = _compare(stat, cond.op, bound)
    if isinstance(cond, SustainedCondition) and cond.for_ is not None:
        # A run that held `for` at some new sample either began before `since` (then the first new
        # sample fires) or inside the new samples (then they span `for`): a sound pre-filter that needs
        # no look-back; the exact check runs for the candidates only.
        test = _compare(col, cond.op, bound)
        first_fire = b.agg(("first_fire", i), sql.SQL("min(ts){}").format(w.new(test)))
        last_fire = b.agg(("last_fire", i), sql.SQL("max(ts){}").format(w.new(test)))
        span = b.bind(timedelta(seconds=seconds(cond.for_)))
        fired = sql.SQL("({} AND ({} = first_ts OR {} - {} >= {}))").format(
            fired, first_fire, last_fire, first_fire, span
        )
    return Judgement(stat, fired)


def rate_of_change(b: Binder, w: Windows, cond: RateOfChangeCondition, bound: sql.Placeholder) -> Judgement:
    """Least-squares slope times window, judged once the samples cover half the window: a slope fitted over
    the first few samples of a unit's life would be extrapolated far beyond what was seen."""
    col_name = sensor(cond.sensor).column
    span = seconds(cond.window)
    flt = w.filter(span)
    slope = b.agg(
        ("slope", col_name, span),
        sql.SQL("regr_slope({}, date_part('epoch', ts)){}").format(sql.Identifier(col_name), flt),
        tail=True,
    )
    count = b.agg(("count", span), sql.SQL("count(*){}").format(flt), tail=True)
    oldest = b.agg(("oldest", span), sql.SQL("min(ts){}").format(flt), tail=True)
    stat = sql.SQL("CASE WHEN {n} >= 3 AND last_ts - {oldest} >= {half} THEN {slope} * {w} END").format(
        n=count, oldest=oldest, half=b.bind(timedelta(seconds=span / 2)), slope=slope, w=b.bind(span)
    )
    return Judgement(stat, _compare(stat, cond.op, bound))


def drift(
    b: Binder, w: Windows, i: int, loaded: LoadedRule, cond: DriftCondition, bound: sql.Placeholder
) -> Judgement:
    """z-score of the window mean against the unit's baseline (`b{N}_*` columns), signed to `direction`;
    NULL until the baseline is ready. With `regimes`: the window mean of the sensor standardised by its
    regime's healthy statistics (the baseline is the fleet's, per regime, stored with the model)."""
    col_name = sensor(cond.sensor).column
    span = seconds(cond.window)
    signs = {"up": "({})", "down": "(-{})", "both": "abs({})"}
    if cond.regimes is not None:
        assert loaded.model is not None and loaded.model.regimes is not None, "loaded with its regimes"
        regimes = loaded.model.regimes
        if sensor(cond.sensor).name not in regimes.means:
            raise ValueError(f"rule {loaded.rule.name}: the regime model has no statistics for {cond.sensor}")
        z_expr = normalised_sql(b, regimes, sensor(cond.sensor).name)
        zmean = b.agg(("zmean", i), sql.SQL("avg({}){}").format(z_expr, w.filter(span)), tail=True)
        stat = sql.SQL(signs[cond.direction]).format(zmean)
        return Judgement(stat, sql.SQL("{} > {}").format(stat, bound))
    mean = b.agg(
        ("mean", col_name, span),
        sql.SQL("avg({}){}").format(sql.Identifier(col_name), w.filter(span)),
        tail=True,
    )
    n = cond.baseline_samples
    idx = b.bind(sensor(cond.sensor).index)
    bmean = sql.SQL("{}[{}]").format(sql.Identifier(f"b{n}_means"), idx)
    bsd = sql.SQL("{}[{}]").format(sql.Identifier(f"b{n}_sds"), idx)
    z = sql.SQL("(({} - {}) / greatest({}, {} * greatest(abs({}), 1.0)))").format(
        mean, bmean, bsd, b.bind(Z_FLOOR), bmean
    )
    signed = {"up": z, "down": sql.SQL("(-{})").format(z), "both": sql.SQL("abs({})").format(z)}
    stat = sql.SQL("CASE WHEN {} = 'ready' THEN {} END").format(
        sql.Identifier(f"b{n}"), signed[cond.direction]
    )
    return Judgement(stat, sql.SQL("{} > {}").format(stat, bound))


def health_index_score(b: Binder, loaded: LoadedRule) -> sql.Composable:
    """The model's linear score of one sample: `intercept + Σ weight·(x - center)`, weights bound; with
    regimes, the channels are standardised by their regime's statistics first, which folds into one
    linear expression per regime (`regimes.py`)."""
    model = loaded.model
    assert model is not None, "health-index rules are loaded with their model"

    def linear(const: float, coeffs: list[tuple[str, float]]) -> sql.Composed:
        terms = [sql.SQL("{} * {}").format(b.bind(a), sql.Identifier(col)) for col, a in coeffs]
        return sql.SQL("({} + {})").format(b.bind(const), sql.SQL(" + ").join(terms))

    if model.regimes is None:
        terms = [
            sql.SQL("{} * ({} - {})").format(b.bind(a), sql.Identifier(column_name), b.bind(center))
            for column_name, center, a in model.terms()
        ]
        return sql.SQL("{} + {}").format(b.bind(model.intercept), sql.SQL(" + ").join(terms))
    regimes = model.regimes
    branches = []
    for r in range(len(regimes.centroids)):
        # w/scale · ((x - m_r)/s_r - c) = (w/(scale·s_r))·x - w/scale·(m_r/s_r + c)
        coeffs, const = [], model.intercept
        for s in model.sensors:
            m, sd, a = regimes.means[s.name][r], regimes.sds[s.name][r], s.weight / s.scale
            coeffs.append((sensor(s.name).column, a / sd))
            const -= a * (m / sd + s.center)
        branches.append(linear(const, coeffs))
    return by_regime_sql(b, regimes, branches)


def health_index(
    b: Binder, w: Windows, i: int, loaded: LoadedRule, cond: HealthIndexCondition, bound: sql.Placeholder
) -> Judgement:
    """Trailing-window mean of the health index."""
    span = seconds(cond.window)
    flt = w.filter(span)
    expr = health_index_score(b, loaded)
    stat = b.agg(("hi", i), sql.SQL("avg({}){}").format(expr, flt), tail=True)
    return Judgement(stat, _compare(stat, cond.op, bound))


def rul(
    b: Binder, w: Windows, i: int, loaded: LoadedRule, cond: RulCondition, bound: sql.Placeholder
) -> Judgement:
    """Remaining cycles from an exponential fit of the health index over the window, averaged with the
    life the fitted level stands for (`rul.estimate` is the reference): the statistic is the interval's
    lower bound; the estimate and upper bound go to the evidence. NULL with fewer than 5 samples, before
    they cover half the window, or when the unit restarted (cycle 1) inside the window, whose cycles then
    belong to two lives."""
    assert loaded.model is not None, "rul rules are loaded with their model"
    span = seconds(cond.window)
    flt = w.filter(span)
    y = sql.SQL("ln(greatest({} + {}, {}))").format(
        health_index_score(b, loaded), b.bind(rul_model.OFFSET), b.bind(rul_model.FLOOR)
    )
    x = sql.SQL("cycle::double precision")

    def agg(name: str, expr: sql.Composable, *, pair: bool = True) -> sql.Identifier:
        fn = sql.SQL("{}({}, {}){}").format(sql.SQL(name), y, x, flt) if pair else expr
        return b.agg(("rul", i, name), fn, tail=True)

    # Only sxy, syy and avgy need the score (each aggregate evaluates it again: PostgreSQL does not
    # share subexpressions); the cycle-only terms do without it.
    sxy, syy, avgy = agg("regr_sxy", y), agg("regr_syy", y), agg("regr_avgy", y)
    n = b.agg(("count", span), sql.SQL("count(*){}").format(flt), tail=True)
    sxx = agg("sxx", sql.SQL("regr_sxx({}, {}){}").format(x, x, flt), pair=False)
    avgx = agg("avgx", sql.SQL("avg({}){}").format(x, flt), pair=False)
    newest = agg("max", sql.SQL("max(cycle){}").format(flt), pair=False)
    oldest = b.agg(("oldest", span), sql.SQL("min(ts){}").format(flt), tail=True)
    restart = agg(
        "restart", sql.SQL("max(ts){}").format(w.filter_and(span, sql.SQL("cycle = 1"))), pair=False
    )
    slope = sql.SQL("({} / {})").format(sxy, sxx)
    se = sql.SQL("sqrt(greatest(0, {syy} - {slope} * {sxy}) / ({n} - 2) / {sxx})").format(
        syy=syy, slope=slope, sxy=sxy, n=n, sxx=sxx
    )
    level = sql.SQL("({} + {} * ({} - {}))").format(avgy, slope, newest, avgx)
    target, horizon = b.bind(rul_model.log_failure()), b.bind(float(loaded.model.target.knee_rul))
    z = b.bind(rul_model.z_value(cond.confidence))
    usable = sql.SQL(
        "{n} >= {min_n} AND {sxx} > 0 AND last_ts - {oldest} >= {half}"
        " AND ({restart} IS NULL OR {restart} <= {oldest})"
    ).format(
        n=n, min_n=b.bind(rul_model.MIN_SAMPLES), sxx=sxx, oldest=oldest,
        half=b.bind(timedelta(seconds=span / 2)), restart=restart,
    )  # fmt: skip

    known = sql.SQL("least({h}, greatest(0.0, {h} * (1.0 - (exp({level}) - {off}))))").format(
        h=horizon, level=level, off=b.bind(rul_model.OFFSET)
    )

    def remaining(s: sql.Composable) -> sql.Composed:
        return sql.SQL(
            "CASE WHEN NOT ({usable}) THEN NULL ELSE (CASE WHEN {level} >= {target} THEN 0.0"
            " WHEN {s} <= 0 THEN {horizon} ELSE least({horizon}, ({target} - {level}) / {s}) END"
            " + {known}) / 2 END"
        ).format(usable=usable, level=level, target=target, s=s, horizon=horizon, known=known)

    low = remaining(sql.SQL("({} + {} * {})").format(slope, z, se))
    extras = (
        ("estimate", remaining(slope)),
        ("high", remaining(sql.SQL("({} - {} * {})").format(slope, z, se))),
    )
    return Judgement(low, _compare(low, cond.op, bound), extras)


def judge(b: Binder, w: Windows, i: int, loaded: LoadedRule) -> Judgement:
    """Rule i's statistic and firing expression, restricted to its `units` when it names them."""
    cond = loaded.rule.condition
    _, bound = condition_bound(cond)
    p_bound = b.bind(bound)
    judged: Judgement
    if isinstance(cond, ThresholdCondition | SustainedCondition):
        judged = per_sample(b, w, i, cond, p_bound)
    elif isinstance(cond, RateOfChangeCondition):
        judged = rate_of_change(b, w, cond, p_bound)
    elif isinstance(cond, DriftCondition):
        judged = drift(b, w, i, loaded, cond, p_bound)
    elif isinstance(cond, HealthIndexCondition):
        judged = health_index(b, w, i, loaded, cond, p_bound)
    elif isinstance(cond, RulCondition):
        judged = rul(b, w, i, loaded, cond, p_bound)
    else:  # pragma: no cover - the discriminated union is exhaustive
        raise TypeError(f"unknown condition {type(cond).__name__}")
    if loaded.rule.units is None:
        return judged
    fired = sql.SQL("(unit_id = ANY({}::integer[]) AND {})").format(
        b.bind(list(loaded.rule.units)), judged.fired
    )
    return Judgement(judged.statistic, fired, judged.extras)
