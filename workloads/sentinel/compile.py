"""Rules → parameterised SQL. Pure functions: no connection, no I/O, testable by reading the text.

Safety: the only identifiers are telemetry columns taken from the sensor catalogue (`sql.Identifier`);
every value a rule carries (bounds, windows, unit lists, model weights, line name) is a bound parameter.
Nothing a user wrote is ever part of the statement text.

Cost: a pass reads the line's new samples once. `scan` folds every rule of a line into aggregates per
unit over `(since, until]` and the trailing window the windowed kinds need (one scan when the window
covers the new samples, else two), so its cost follows the new data, not the table, and it filters
down to the units that matter: a rule fired, or an alert is open. The per-sample detail (`detail`,
`sustained`) then runs only for those units, through the primary key (line, unit_id, ts). Each
condition kind's statistic is compiled in `kinds.py`; the drift baselines' statements are in
`baseline_sql.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import sql

from workloads.api.common import seconds
from workloads.api.rule import DriftCondition, SustainedCondition, ThresholdCondition, upward
from workloads.sentinel.kinds import Windows, judge, window_seconds
from workloads.sentinel.rules import LoadedRule
from workloads.sentinel.statement import Binder, Params, Statement, column, op_sql

__all__ = ["MAX_DETAIL_RULES", "Scan", "column", "detail", "op_sql", "scan", "sustained", "window_seconds"]


@dataclass(frozen=True)
class Scan:
    """Phase one of a pass on one line: per-unit statistics of every rule, for the units that matter."""

    query: sql.Composed
    params: Params
    rules: tuple[LoadedRule, ...]
    baseline_sizes: tuple[int, ...]
    tail_from: datetime | None  # start of the trailing window the windowed kinds read (None: none)
    # Output columns: unit_id, last_ts, n_new, restart_ts, open_rules, then per baseline size N
    # `b{N}` (baseline state), then per rule i `s{i}` (statistic), its evidence `r{i}_{name}` (rul: the
    # estimate and upper bound) and `f{i}` (fired / candidate),
    # then `total_samples`, `total_units` (same on every row; a row with NULL unit_id when none matter).


@dataclass(frozen=True)
class _Baselines:
    """The drift baselines' join, columns and state (missing/stale/pending/ready) per baseline size."""

    joins: sql.Composable
    columns: sql.Composable
    state: sql.Composable
    names: sql.Composable


def _baselines(b: Binder, p_line: sql.Placeholder, sizes: Sequence[int]) -> _Baselines:
    joins: list[sql.Composable] = []
    cols: list[sql.Composable] = []
    states: list[sql.Composable] = []
    for n in sizes:
        alias = sql.Identifier(f"bl{n}")
        means, sds, start = (sql.Identifier(f"b{n}_{s}") for s in ("means", "sds", "start"))
        joins.append(
            sql.SQL(
                " LEFT JOIN sentinel_baselines {a} ON {a}.line = {line} AND {a}.unit_id = agg.unit_id"
                " AND {a}.samples = {n}"
            ).format(a=alias, line=p_line, n=b.bind(n))
        )
        cols.append(
            sql.SQL(", {a}.means AS {m}, {a}.sds AS {s}, {a}.life_start AS {ls}").format(
                a=alias, m=means, s=sds, ls=start
            )
        )
        # missing: no row yet; stale: the unit restarted (cycle 1) after the baseline's life began;
        # pending: the life has fewer than N samples so far; ready: usable.
        states.append(
            sql.SQL(
                ", CASE WHEN {ls} IS NULL THEN 'missing'"
                " WHEN restart_ts IS NOT NULL AND restart_ts > {ls} THEN 'stale'"
                " WHEN {m} IS NULL THEN 'pending' ELSE 'ready' END AS {st}"
            ).format(ls=start, m=means, st=sql.Identifier(f"b{n}"))
        )
    return _Baselines(
        sql.SQL("").join(joins),
        sql.SQL("").join(cols),
        sql.SQL("").join(states),
        sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(f"b{n}")) for n in sizes),
    )


def scan(
    line: str, rules: Sequence[LoadedRule], since: datetime, until: datetime, *, shared: bool | None = None
) -> Scan:
    """Per unit, aggregates over the new samples `(since, until]` for the per-sample kinds and over the
    trailing window `(until - longest window, until]` for the windowed kinds; judged, and filtered down
    to the units where a rule fired or an alert is open.

    `shared`: both sets of aggregates in one scan of `(min(since, window start), until]`, each filtered
    to its own rows; otherwise two scans, joined. By default one scan when the window reaches back to
    `since` or further (a pass every minute, say), whose scan then reads every new sample anyway; two
    when the new samples outrun the window (a backlog), where folding the window into the long scan
    as a filter measured no faster than reading its rows twice.
    """
    if not rules:
        raise ValueError("scan needs at least one rule")
    b = Binder()
    p_line, p_since, p_until = b.bind(line), b.bind(since), b.bind(until)
    back = max(window_seconds(r) for r in rules)
    tail_from = until - timedelta(seconds=back) if back else None
    if tail_from is None:
        shared = False
    elif shared is None:
        shared = tail_from <= since
    scan_from = min(since, tail_from) if shared and tail_from is not None else tail_from
    windows = Windows(b, until, scan_from, since if shared else None)
    sizes = sorted(
        {r.rule.condition.baseline_samples for r in rules if isinstance(r.rule.condition, DriftCondition)}
    )
    judged = [judge(b, windows, i, loaded) for i, loaded in enumerate(rules)]
    stats = [sql.SQL("{} AS {}").format(j.statistic, sql.Identifier(f"s{i}")) for i, j in enumerate(judged)]
    stats += [
        sql.SQL("{} AS {}").format(expr, sql.Identifier(f"r{i}_{name}"))
        for i, j in enumerate(judged)
        for name, expr in j.extras
    ]
    fires = [
        sql.SQL("coalesce({}, false) AS {}").format(j.fired, sql.Identifier(f"f{i}"))
        for i, j in enumerate(judged)
    ]
    baselines = _baselines(b, p_line, sizes)

    relevant: list[sql.Composable] = [sql.Identifier(f"f{i}") for i in range(len(rules))]
    relevant.append(sql.SQL("open_rules IS NOT NULL"))
    relevant.extend(sql.SQL("{} <> 'ready'").format(sql.Identifier(f"b{n}")) for n in sizes)

    def per_unit(columns: sql.Composable, start: sql.Placeholder, having: sql.Composable) -> sql.Composed:
        return sql.SQL(
            "SELECT unit_id, {columns} FROM telemetry WHERE line = {line} AND ts > {start}"
            " AND ts <= {until} GROUP BY unit_id{having}"
        ).format(columns=columns, line=p_line, start=start, until=p_until, having=having)

    new = windows.new()
    restart = (
        sql.SQL("max(ts){} AS restart_ts").format(windows.new(sql.SQL("cycle = 1")))
        if sizes
        else sql.SQL("NULL::timestamptz AS restart_ts")
    )
    fresh_columns: list[sql.Composable] = [
        sql.SQL("max(ts){new} AS last_ts, min(ts){new} AS first_ts, count(*){new} AS n_new").format(new=new),
        restart,
        *b.fresh,
    ]
    tail_cte: sql.Composable = sql.SQL("")
    agg_cte: sql.Composable = sql.SQL(" agg AS (SELECT * FROM fresh),")
    if shared:
        assert scan_from is not None
        # Units with no new sample are not judged (as with two scans, where the window joins the new).
        having = sql.SQL(" HAVING count(*){} > 0").format(new) if scan_from < since else sql.SQL("")
        fresh = per_unit(sql.SQL(", ").join([*fresh_columns, *b.tail]), b.bind(scan_from), having)
    else:
        fresh = per_unit(sql.SQL(", ").join(fresh_columns), p_since, sql.SQL(""))
        if b.tail:
            assert tail_from is not None
            tail = per_unit(sql.SQL(", ").join(b.tail), b.bind(tail_from), sql.SQL(""))
            tail_cte = sql.SQL(" tail AS ({}),").format(tail)
            tail_cols = sql.SQL(", ").join(sql.Identifier(c) for c in b.tail_aliases())
            agg_cte = sql.SQL(
                " agg AS (SELECT fresh.*, {} FROM fresh LEFT JOIN tail USING (unit_id)),"
            ).format(tail_cols)
    query = sql.SQL(
        "WITH fresh AS ({fresh}),"
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
        fresh=fresh,
        line=p_line,
        tail_cte=tail_cte,
        agg_cte=agg_cte,
        rules=b.bind([r.rule.name for r in rules]),
        bcols=baselines.columns,
        bjoins=baselines.joins,
        bstate=baselines.state,
        bnames=baselines.names,
        stats=sql.SQL(", ").join(stats),
        fires=sql.SQL(", ").join(fires),
        relevant=sql.SQL(" OR ").join(relevant),
    )
    return Scan(query, b.params, tuple(rules), tuple(sizes), tail_from)


# --- per-sample detail for the units that matter ----------------------------------------------------


MAX_DETAIL_RULES = 62  # rules per detail statement: each owns a bit of a bigint unit mask


def detail(
    line: str, rules: Sequence[LoadedRule], units: Sequence[Sequence[int]], since: datetime, until: datetime
) -> Statement:
    """Threshold evidence over `(since, until]`: rule i is judged for `units[i]` only (a bit mask per
    unit keeps the others' filters from being evaluated); one index range scan per unit.

    Per unit: `c{i}` samples beyond rule i's value, `first{i}`/`last{i}` their times, `worst{i}`, and
    `latest{i}` its sensor at the unit's newest sample (`latest_ts`). Sustained rules only need the latter.
    """
    if len(rules) > MAX_DETAIL_RULES or len(rules) != len(units):
        raise ValueError(f"detail takes 1..{MAX_DETAIL_RULES} rules, each with its units")
    b = Binder()
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
    return Statement(query, b.params)


def sustained(
    line: str, loaded: LoadedRule, units: Sequence[int], since: datetime, until: datetime
) -> Statement:
    """Exact sustained evaluation at every new sample of `units` (the phase-one candidates).

    Output per unit: `held` samples after `since` at which the condition held, `first`/`last` their
    times, `worst` the extreme value among them, `held_at_end` whether it holds at the newest sample.
    """
    cond = loaded.rule.condition
    assert isinstance(cond, SustainedCondition)
    b = Binder()
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
    return Statement(query, b.params)
