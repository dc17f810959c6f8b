"""Rules → parameterised SQL. Pure functions: no connection, no I/O, testable by reading the text.

Safety: the only identifiers are telemetry columns taken from the sensor catalogue (`sql.Identifier`);
every value a rule carries (bounds, windows, unit lists, model weights, line name) is a bound parameter.
Nothing a user wrote is ever part of the statement text.

Cost: a pass reads the line's new samples once. `scan` folds every rule of a line into one aggregate
per unit over `(since, until]` (plus the short look-back windowed kinds need), so its cost follows the
new data, not the table, and it filters down to the units that matter: a rule fired, or an alert is
open. The per-sample detail (`detail`, `sustained`) then runs only for those units, through the primary
key (line, unit_id, ts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from workloads.api.common import seconds
from workloads.api.rule import (
    DriftCondition,
    HealthIndexCondition,
    RateOfChangeCondition,
    SustainedCondition,
    ThresholdCondition,
    condition_bound,
    upward,
)
from workloads.catalog import SENSORS, sensor
from workloads.sentinel.rules import LoadedRule

Params = dict[str, Any]
_OPS = {">": sql.SQL(">"), ">=": sql.SQL(">="), "<": sql.SQL("<"), "<=": sql.SQL("<=")}
Z_FLOOR = 1e-6  # smallest baseline standard deviation used as a divisor (a constant channel)


def column(name: str) -> sql.Identifier:
    """A sensor's column, resolved through the catalogue (the only way a name reaches SQL)."""
    return sql.Identifier(sensor(name).column)


def op_sql(op: str) -> sql.SQL:
    return _OPS[op]  # KeyError for anything that is not one of the four comparisons


def window_seconds(rule: LoadedRule) -> float:
    """How far back before `until` a windowed rule looks (0 for per-sample kinds)."""
    cond = rule.rule.condition
    if isinstance(cond, RateOfChangeCondition | DriftCondition | HealthIndexCondition):
        return seconds(cond.window)
    return 0.0


class _Binder:
    """Collects bound parameters under generated names, and deduplicates aggregate columns."""

    def __init__(self) -> None:
        self.params: Params = {}
        self.fresh: list[sql.Composable] = []  # aggregates over the new samples
        self.tail: list[sql.Composable] = []  # aggregates over the trailing window
        self._agg_alias: dict[object, str] = {}
        self._tail_aliases: list[str] = []

    def bind(self, value: object) -> sql.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def agg(self, key: object, build: Any, *, tail: bool = False) -> sql.Identifier:
        alias = self._agg_alias.get(key)
        if alias is None:
            alias = f"a{len(self._agg_alias)}"
            self._agg_alias[key] = alias
            (self.tail if tail else self.fresh).append(
                sql.SQL("{} AS {}").format(build(), sql.Identifier(alias))
            )
            if tail:
                self._tail_aliases.append(alias)
        return sql.Identifier(alias)

    def tail_aliases(self) -> list[str]:
        return list(self._tail_aliases)


@dataclass(frozen=True)
class Scan:
    """Phase one of a pass on one line: per-unit statistics of every rule, for the units that matter."""

    query: sql.Composed
    params: Params
    rules: tuple[LoadedRule, ...]
    baseline_sizes: tuple[int, ...]
    tail_from: datetime | None  # start of the trailing window the windowed kinds read (None: none)
    # Output columns: unit_id, last_ts, n_new, restart_ts, open_rules, then per baseline size N
    # `b{N}` (baseline state), then per rule i `s{i}` (statistic) and `f{i}` (fired / candidate),
    # then `total_samples`, `total_units` (same on every row; a row with NULL unit_id when none matter).


def scan(line: str, rules: Sequence[LoadedRule], since: datetime, until: datetime) -> Scan:
    """Two aggregates per unit: one over the new samples `(since, until]` for the per-sample kinds, one
    over the trailing window `(until - longest window, until]` for the windowed kinds; joined, judged,
    and filtered down to the units where a rule fired or an alert is open."""
    if not rules:
        raise ValueError("scan needs at least one rule")
    b = _Binder()
    p_line = b.bind(line)
    p_since = b.bind(since)
    p_until = b.bind(until)
    back = max(window_seconds(r) for r in rules)
    tail_from = until - timedelta(seconds=back) if back else None
    window_from: dict[float, sql.Placeholder] = {}

    def trailing(span: float) -> sql.Placeholder:
        if span not in window_from:
            window_from[span] = b.bind(until - timedelta(seconds=span))
        return window_from[span]

    def window_filter(span: float) -> sql.Composable:
        # the whole tail scan is the longest window: no filter needed for it
        return sql.SQL("") if span == back else sql.SQL(" FILTER (WHERE ts > {})").format(trailing(span))

    sizes = sorted(
        {r.rule.condition.baseline_samples for r in rules if isinstance(r.rule.condition, DriftCondition)}
    )
    stats: list[sql.Composable] = []
    fires: list[sql.Composable] = []
    for i, loaded in enumerate(rules):
        cond = loaded.rule.condition
        stat: sql.Composable
        fired: sql.Composable
        op, bound = condition_bound(cond)
        p_bound = b.bind(bound)
        if isinstance(cond, ThresholdCondition | SustainedCondition):
            col_name = sensor(cond.sensor).column
            col = sql.Identifier(col_name)
            fn = sql.SQL("max") if upward(op) else sql.SQL("min")
            stat = b.agg(
                ("extreme", col_name, upward(op)), lambda fn=fn, col=col: sql.SQL("{}({})").format(fn, col)
            )
            fired = sql.SQL("{} {} {}").format(stat, op_sql(op), p_bound)
            if isinstance(cond, SustainedCondition) and cond.for_ is not None:
                # A run that held `for` at some new sample either began before `since` (then the first
                # new sample fires) or inside the new samples (then they span `for`): a sound pre-filter
                # that needs no look-back; the exact check runs for the candidates only.
                test = sql.SQL("{} {} {}").format(col, op_sql(op), p_bound)
                first_fire = b.agg(
                    ("first_fire", i), lambda t=test: sql.SQL("min(ts) FILTER (WHERE {})").format(t)
                )
                last_fire = b.agg(
                    ("last_fire", i), lambda t=test: sql.SQL("max(ts) FILTER (WHERE {})").format(t)
                )
                span = b.bind(timedelta(seconds=seconds(cond.for_)))
                fired = sql.SQL("({} AND ({} = first_ts OR {} - {} >= {}))").format(
                    fired, first_fire, last_fire, first_fire, span
                )
        elif isinstance(cond, RateOfChangeCondition):
            col_name = sensor(cond.sensor).column
            col = sql.Identifier(col_name)
            w = seconds(cond.window)
            flt = window_filter(w)
            slope = b.agg(
                ("slope", col_name, w),
                lambda col=col, flt=flt: sql.SQL("regr_slope({}, date_part('epoch', ts)){}").format(col, flt),
                tail=True,
            )
            count = b.agg(("count", w), lambda flt=flt: sql.SQL("count(*){}").format(flt), tail=True)
            oldest = b.agg(("oldest", w), lambda flt=flt: sql.SQL("min(ts){}").format(flt), tail=True)
            # Judged only once the samples cover at least half the window: a slope fitted over the
            # first few samples of a unit's life would be extrapolated far beyond what was seen.
            stat = sql.SQL(
                "CASE WHEN {n} >= 3 AND last_ts - {oldest} >= {half} THEN {slope} * {w} END"
            ).format(n=count, oldest=oldest, half=b.bind(timedelta(seconds=w / 2)), slope=slope, w=b.bind(w))
            fired = sql.SQL("{} {} {}").format(stat, op_sql(op), p_bound)
        elif isinstance(cond, DriftCondition):
            col_name = sensor(cond.sensor).column
            col = sql.Identifier(col_name)
            w = seconds(cond.window)
            flt = window_filter(w)
            mean = b.agg(
                ("mean", col_name, w),
                lambda col=col, flt=flt: sql.SQL("avg({}){}").format(col, flt),
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
            state = sql.Identifier(f"b{n}")
            stat = sql.SQL("CASE WHEN {} = 'ready' THEN {} END").format(state, signed[cond.direction])
            fired = sql.SQL("{} > {}").format(stat, p_bound)
        elif isinstance(cond, HealthIndexCondition):
            assert loaded.model is not None, "health-index rules are loaded with their model"
            w = seconds(cond.window)
            flt = window_filter(w)
            terms = [
                sql.SQL("{} * ({} - {})").format(b.bind(a), sql.Identifier(column_name), b.bind(center))
                for column_name, center, a in loaded.model.terms()
            ]
            expr = sql.SQL("{} + {}").format(b.bind(loaded.model.intercept), sql.SQL(" + ").join(terms))
            stat = b.agg(
                ("hi", i), lambda expr=expr, flt=flt: sql.SQL("avg({}){}").format(expr, flt), tail=True
            )
            fired = sql.SQL("{} {} {}").format(stat, op_sql(op), p_bound)
        else:  # pragma: no cover - the discriminated union is exhaustive
            raise TypeError(f"unknown condition {type(cond).__name__}")
        if loaded.rule.units is not None:
            fired = sql.SQL("(unit_id = ANY({}::integer[]) AND {})").format(
                b.bind(list(loaded.rule.units)), fired
            )
        stats.append(sql.SQL("{} AS {}").format(stat, sql.Identifier(f"s{i}")))
        fires.append(sql.SQL("coalesce({}, false) AS {}").format(fired, sql.Identifier(f"f{i}")))

    baseline_joins: list[sql.Composable] = []
    baseline_cols: list[sql.Composable] = []
    baseline_state: list[sql.Composable] = []
    for n in sizes:
        alias = sql.Identifier(f"bl{n}")
        baseline_joins.append(
            sql.SQL(
                " LEFT JOIN sentinel_baselines {a} ON {a}.line = {line} AND {a}.unit_id = agg.unit_id"
                " AND {a}.samples = {n}"
            ).format(a=alias, line=p_line, n=b.bind(n))
        )
        baseline_cols.append(
            sql.SQL("{a}.means AS {m}, {a}.sds AS {s}, {a}.life_start AS {ls}").format(
                a=alias,
                m=sql.Identifier(f"b{n}_means"),
                s=sql.Identifier(f"b{n}_sds"),
                ls=sql.Identifier(f"b{n}_start"),
            )
        )
        # missing: no row yet; stale: the unit restarted (cycle 1) after the baseline's life began;
        # pending: the life has fewer than N samples so far; ready: usable.
        baseline_state.append(
            sql.SQL(
                "CASE WHEN {ls} IS NULL THEN 'missing'"
                " WHEN restart_ts IS NOT NULL AND restart_ts > {ls} THEN 'stale'"
                " WHEN {m} IS NULL THEN 'pending' ELSE 'ready' END AS {st}"
            ).format(
                ls=sql.Identifier(f"b{n}_start"), m=sql.Identifier(f"b{n}_means"), st=sql.Identifier(f"b{n}")
            )
        )

    relevant: list[sql.Composable] = [sql.Identifier(f"f{i}") for i in range(len(rules))]
    relevant.append(sql.SQL("open_rules IS NOT NULL"))
    relevant.extend(sql.SQL("{} <> 'ready'").format(sql.Identifier(f"b{n}")) for n in sizes)

    restart = sql.SQL(
        ", max(ts) FILTER (WHERE cycle = 1) AS restart_ts" if sizes else ", NULL::timestamptz AS restart_ts"
    )
    tail_cte: sql.Composable = sql.SQL("")
    agg_cte: sql.Composable = sql.SQL(" agg AS (SELECT * FROM fresh),")
    if b.tail:
        assert tail_from is not None
        tail_cte = sql.SQL(
            " tail AS (SELECT unit_id, {aggs} FROM telemetry WHERE line = {line} AND ts > {start}"
            " AND ts <= {until} GROUP BY unit_id),"
        ).format(aggs=sql.SQL(", ").join(b.tail), line=p_line, start=b.bind(tail_from), until=p_until)
        tail_cols = sql.SQL(", ").join(sql.Identifier(c) for c in b.tail_aliases())
        agg_cte = sql.SQL(" agg AS (SELECT fresh.*, {} FROM fresh LEFT JOIN tail USING (unit_id)),").format(
            tail_cols
        )
    query = sql.SQL(
        "WITH fresh AS ("
        "SELECT unit_id, max(ts) AS last_ts, min(ts) AS first_ts, count(*) AS n_new{restart}{aggs}"
        " FROM telemetry WHERE line = {line} AND ts > {since} AND ts <= {until}"
        " GROUP BY unit_id),"
        "{tail_cte}{agg_cte}"
        " open AS (SELECT unit_id, array_agg(rule) AS open_rules FROM alerts"
        " WHERE line = {line} AND resolved_at IS NULL AND rule = ANY({rules}::text[]) GROUP BY unit_id),"
        " joined AS (SELECT agg.*, open.open_rules{bcols} FROM agg LEFT JOIN open USING (unit_id){bjoins}),"
        " staged AS (SELECT *{bstate} FROM joined),"
        " judged AS (SELECT unit_id, last_ts, n_new, restart_ts, open_rules{bnames}, {stats}, {fires}"
        " FROM staged),"
        " totals AS (SELECT coalesce(sum(n_new), 0)::bigint AS total_samples, count(*) AS total_units"
        " FROM fresh)"
        " SELECT judged.*, totals.* FROM totals LEFT JOIN judged ON ({relevant})"
        " ORDER BY judged.unit_id"
    ).format(
        restart=restart,
        aggs=sql.SQL("").join(sql.SQL(", {}").format(a) for a in b.fresh),
        line=p_line,
        since=p_since,
        until=p_until,
        tail_cte=tail_cte,
        agg_cte=agg_cte,
        rules=b.bind([r.rule.name for r in rules]),
        bcols=sql.SQL("").join(sql.SQL(", {}").format(c) for c in baseline_cols),
        bjoins=sql.SQL("").join(baseline_joins),
        bstate=sql.SQL("").join(sql.SQL(", {}").format(c) for c in baseline_state),
        bnames=sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(f"b{n}")) for n in sizes),
        stats=sql.SQL(", ").join(stats),
        fires=sql.SQL(", ").join(fires),
        relevant=sql.SQL(" OR ").join(relevant),
    )
    return Scan(query, b.params, tuple(rules), tuple(sizes), tail_from)


# --- per-sample detail for the units that matter ----------------------------------------------------


@dataclass(frozen=True)
class Detail:
    """Per unit: for each rule `c{i}` firing samples, `first{i}`/`last{i}` their times, `worst{i}`,
    and `latest{i}` the rule's sensor at the unit's newest sample (`latest_ts`)."""

    query: sql.Composed
    params: Params


MAX_DETAIL_RULES = 62  # rules per detail statement: each owns a bit of a bigint unit mask


def detail(
    line: str, rules: Sequence[LoadedRule], units: Sequence[Sequence[int]], since: datetime, until: datetime
) -> Detail:
    """Threshold evidence over `(since, until]`: rule i is judged for `units[i]` only (a bit mask per
    unit keeps the others' filters from being evaluated); one index range scan per unit.

    Per unit: `c{i}` samples beyond rule i's value, `first{i}`/`last{i}` their times, `worst{i}`, and
    `latest{i}` its sensor at the unit's newest sample (`latest_ts`). Sustained rules only need the latter.
    """
    if len(rules) > MAX_DETAIL_RULES or len(rules) != len(units):
        raise ValueError(f"detail takes 1..{MAX_DETAIL_RULES} rules, each with its units")
    b = _Binder()
    p_line, p_since, p_until = b.bind(line), b.bind(since), b.bind(until)
    masks: dict[int, int] = {}
    for i, wanted in enumerate(units):
        for u in wanted:
            masks[u] = masks.get(u, 0) | (1 << i)
    cols: list[sql.Composable] = [sql.SQL("count(*) AS n")]
    latest: list[sql.Composable] = []
    for i, loaded in enumerate(rules):
        cond = loaded.rule.condition
        assert isinstance(cond, ThresholdCondition | SustainedCondition)
        col = column(cond.sensor)
        latest.append(sql.SQL("{} AS {}").format(col, sql.Identifier(f"latest{i}")))
        if isinstance(cond, SustainedCondition):
            continue
        test = sql.SQL("u.mask & {bit} <> 0 AND {col} {op} {v}").format(
            bit=b.bind(1 << i), col=col, op=op_sql(cond.op), v=b.bind(cond.value)
        )
        worst = sql.SQL("max") if upward(cond.op) else sql.SQL("min")
        cols.append(
            sql.SQL(
                "count(*) FILTER (WHERE {t}) AS {c}, min(ts) FILTER (WHERE {t}) AS {f},"
                " max(ts) FILTER (WHERE {t}) AS {l}, {w}({col}) FILTER (WHERE {t}) AS {wo}"
            ).format(
                t=test,
                col=col,
                w=worst,
                c=sql.Identifier(f"c{i}"),
                f=sql.Identifier(f"first{i}"),
                l=sql.Identifier(f"last{i}"),
                wo=sql.Identifier(f"worst{i}"),
            )
        )
    ordered = sorted(masks)
    query = sql.SQL(
        "SELECT u.unit_id, d.*, l.* FROM unnest({units}::integer[], {masks}::bigint[]) AS u(unit_id, mask)"
        " CROSS JOIN LATERAL (SELECT {cols} FROM telemetry t"
        " WHERE t.line = {line} AND t.unit_id = u.unit_id AND t.ts > {since} AND t.ts <= {until}) d"
        " CROSS JOIN LATERAL (SELECT t.ts AS latest_ts, {latest} FROM telemetry t"
        " WHERE t.line = {line} AND t.unit_id = u.unit_id AND t.ts > {since} AND t.ts <= {until}"
        " ORDER BY t.ts DESC LIMIT 1) l"
        " ORDER BY u.unit_id"
    ).format(
        units=b.bind(ordered),
        masks=b.bind([masks[u] for u in ordered]),
        cols=sql.SQL(", ").join(cols),
        latest=sql.SQL(", ").join(latest),
        line=p_line,
        since=p_since,
        until=p_until,
    )
    return Detail(query, b.params)


def sustained(
    line: str, loaded: LoadedRule, units: Sequence[int], since: datetime, until: datetime
) -> Detail:
    """Exact sustained evaluation at every new sample of `units` (the phase-one candidates).

    Output per unit: `held` samples after `since` at which the condition held, `first`/`last` their
    times, `worst` the extreme value among them, `held_at_end` whether it holds at the newest sample.
    """
    cond = loaded.rule.condition
    assert isinstance(cond, SustainedCondition)
    b = _Binder()
    p_line, p_since, p_until = b.bind(line), b.bind(since), b.bind(until)
    col = column(cond.sensor)
    test = sql.SQL("{} {} {}").format(col, op_sql(cond.op), b.bind(cond.value))
    worst = sql.SQL("max") if upward(cond.op) else sql.SQL("min")
    if cond.for_ is not None:
        span = timedelta(seconds=seconds(cond.for_))
        # Runs of firing samples: `grp` counts the non-firing samples so far, so a run shares one grp;
        # the run started at its first firing sample, and holds once it has lasted `for`.
        rows = sql.SQL(
            "SELECT ts, x, c AND ts - min(ts) FILTER (WHERE c) OVER (PARTITION BY grp) >= {span} AS held,"
            " ts = max(ts) OVER () AS is_last"
            " FROM (SELECT ts, {col} AS x, {test} AS c,"
            " count(*) FILTER (WHERE NOT ({test})) OVER (ORDER BY ts ROWS UNBOUNDED PRECEDING) AS grp"
            " FROM telemetry t WHERE t.line = {line} AND t.unit_id = u.unit_id"
            " AND t.ts > {start} AND t.ts <= {until}) runs"
        ).format(
            span=b.bind(span), col=col, test=test, line=p_line, start=b.bind(since - 2 * span), until=p_until
        )
        lower: sql.Composable = sql.SQL("")
    else:
        assert cond.k is not None and cond.n is not None
        # The n-1 samples before `since` complete the first windows: found by a backwards index scan.
        rows = sql.SQL(
            "SELECT ts, {col} AS x, count(*) FILTER (WHERE {test}) OVER"
            " (ORDER BY ts ROWS BETWEEN {back} PRECEDING AND CURRENT ROW) >= {k} AS held,"
            " ts = max(ts) OVER () AS is_last"
            " FROM telemetry t WHERE t.line = {line} AND t.unit_id = u.unit_id"
            " AND t.ts >= lo.ts AND t.ts <= {until}"
        ).format(col=col, test=test, back=b.bind(cond.n - 1), k=b.bind(cond.k), line=p_line, until=p_until)
        lower = sql.SQL(
            " CROSS JOIN LATERAL (SELECT coalesce(min(p.ts), {since}) AS ts"
            " FROM (SELECT t.ts FROM telemetry t WHERE t.line = {line} AND t.unit_id = u.unit_id"
            " AND t.ts <= {since} ORDER BY t.ts DESC LIMIT {limit}) p) lo"
        ).format(since=p_since, line=p_line, limit=b.bind(cond.n - 1))
    query = sql.SQL(
        "SELECT u.unit_id, count(*) FILTER (WHERE h.held AND h.ts > {since}) AS held,"
        " min(h.ts) FILTER (WHERE h.held AND h.ts > {since}) AS first,"
        " max(h.ts) FILTER (WHERE h.held AND h.ts > {since}) AS last,"
        " {worst}(h.x) FILTER (WHERE h.held AND h.ts > {since}) AS worst,"
        " bool_or(h.held) FILTER (WHERE h.is_last) AS held_at_end"
        " FROM unnest({units}::integer[]) AS u(unit_id){lower}"
        " CROSS JOIN LATERAL ({rows}) h GROUP BY u.unit_id ORDER BY u.unit_id"
    ).format(
        since=p_since,
        worst=worst,
        units=b.bind(list(units)),
        lower=lower,
        rows=rows,
    )
    return Detail(query, b.params)


# --- baselines and watermarks -------------------------------------------------------------------------


def baseline_lives(
    line: str, samples: int, starts: Sequence[tuple[int, datetime | None]], until: datetime
) -> Detail:
    """Start (or restart) units' lives at a given time or, when None, at the unit's latest cycle-1
    sample (a loop restart), else its first sample."""
    b = _Binder()
    p_line = b.bind(line)
    query = sql.SQL(
        "INSERT INTO sentinel_baselines AS s (line, unit_id, samples, life_start)"
        " SELECT {line}, v.unit_id, {n}, coalesce(v.start,"
        " (SELECT t.ts FROM telemetry t WHERE t.line = {line} AND t.unit_id = v.unit_id AND t.ts <= {until}"
        " AND t.cycle = 1 ORDER BY t.ts DESC LIMIT 1),"
        " (SELECT min(t.ts) FROM telemetry t WHERE t.line = {line} AND t.unit_id = v.unit_id))"
        " FROM unnest({units}::integer[], {starts}::timestamptz[]) AS v(unit_id, start)"
        " ON CONFLICT (line, unit_id, samples) DO UPDATE SET life_start = excluded.life_start,"
        " means = NULL, sds = NULL, computed_at = NULL"
        " WHERE excluded.life_start > s.life_start"
    ).format(
        line=p_line,
        n=b.bind(samples),
        until=b.bind(until),
        units=b.bind([u for u, _ in starts]),
        starts=b.bind([s for _, s in starts]),
    )
    return Detail(query, b.params)


def baseline_fill(line: str, samples: int, until: datetime) -> Detail:
    """Compute pending baselines whose life has reached `samples` samples (each once per life)."""
    b = _Binder()
    p_line = b.bind(line)
    query = sql.SQL(
        # MATERIALIZED: computed once, whatever the planner guesses about a freshly filled table.
        "WITH f AS MATERIALIZED (SELECT p.unit_id, {means_named}, {sds_named} FROM sentinel_baselines p"
        " CROSS JOIN LATERAL (SELECT * FROM telemetry t WHERE t.line = p.line AND t.unit_id = p.unit_id"
        " AND t.ts >= p.life_start AND t.ts <= {until} ORDER BY t.ts LIMIT {n}) early"
        " WHERE p.line = {line} AND p.samples = {n} AND p.means IS NULL"
        " GROUP BY p.unit_id HAVING count(*) = {n})"
        " UPDATE sentinel_baselines s SET means = ARRAY[{means}], sds = ARRAY[{sds}], computed_at = now()"
        " FROM f WHERE s.line = {line} AND s.samples = {n} AND s.unit_id = f.unit_id"
    ).format(
        means=sql.SQL(", ").join(sql.Identifier(f"m_{s.column}") for s in SENSORS),
        sds=sql.SQL(", ").join(sql.Identifier(f"d_{s.column}") for s in SENSORS),
        means_named=sql.SQL(", ").join(
            sql.SQL("avg({}) AS {}").format(sql.Identifier(s.column), sql.Identifier(f"m_{s.column}"))
            for s in SENSORS
        ),
        sds_named=sql.SQL(", ").join(
            sql.SQL("coalesce(stddev_samp({}), 0) AS {}").format(
                sql.Identifier(s.column), sql.Identifier(f"d_{s.column}")
            )
            for s in SENSORS
        ),
        until=b.bind(until),
        n=b.bind(samples),
        line=p_line,
    )
    return Detail(query, b.params)
