"""`dynoline bench query`: "latest sample for every unit" over a telemetry table of ≥ 20 M rows.

The table comes from `query_data` (built server-side once, reused by a later run against the same
`--database-url`). The product's query (`workloads.store.queries.latest_per_unit`, a read of the
one-row-per-unit `telemetry_latest`) is timed over repeated runs next to the probes of telemetry it
replaced (`latest_baselines`), interleaved run by run, and its plan is checked (`query_plan`) for
index scans and for the absence of any sequential scan on telemetry or telemetry_latest.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.errors import DynolineError
from workloads.store.connection import connect
from workloads.store.queries import FETCH_CHUNK_ROWS, LATEST_PER_UNIT, fetch_binary, latest_per_unit_query
from workloads.store.writer import copy_rows, upsert_latest

from .harness import (
    Conn,
    Result,
    Setting,
    add_common_arguments,
    bench_database,
    emit,
    machine,
    percentile,
    server_settings,
)
from .latest_baselines import (
    EXACT_KEY_PROBE,
    LATEST_PER_UNIT_NAIVE,
    LATEST_PER_UNIT_PROBE,
    LATEST_PER_UNIT_UNHINTED,
    params,
)
from .query_data import (
    LINE,
    OTHER_TICKS,
    Build,
    build_experiments,
    ensure_data,
    ensure_other_lines,
    fill_latest,
)
from .query_data import other_line as other_line
from .query_plan import PlanSummary, explain
from .query_plan import plan_summary as plan_summary
from .query_report import Measured, QueryResult, Targets, Upkeep, render

log = logging.getLogger(__name__)

SCHEMA = "dynoline_bench_query"
TARGET_MS = 20.0
# What a dashboard of the line asks for: the unit, when, and the channels it draws.
DASHBOARD_COLUMNS = ("unit_id", "ts", "t30", "t50", "ps30", "w31")

__all__ = ["LINE", "OTHER_TICKS", "SCHEMA", "other_line", "plan_summary", "register", "run"]


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench_sub.add_parser(
        "query",
        help='"latest sample for every unit" over ≥ 20 M rows, against DISTINCT ON',
        description="Time the product's latest-per-unit query (median, p95) next to the naive DISTINCT ON"
        " over a telemetry table of --rows rows for --units units, with the plan summarised.",
    )
    add_common_arguments(p)
    p.add_argument("--units", type=int, default=10_000, help="units on the line (default 10000)")
    p.add_argument("--rows", type=int, default=20_000_000, help="telemetry rows at least (default 20000000)")
    p.add_argument(
        "--lines",
        type=int,
        default=10,
        help="lines in the database, the benchmarked one included; each other line has --units units"
        f" and {OTHER_TICKS} ticks (default 10)",
    )
    p.add_argument("--repeat", type=int, default=50, help="timed runs of the product query (default 50)")
    p.add_argument(
        "--naive-repeat", type=int, default=3, help="timed runs of the naive query (default 3; each is slow)"
    )
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    if not 1 <= args.units <= 100_000:
        raise DynolineError(f"--units must be between 1 and 100000, got {args.units}")
    if args.rows < args.units:
        raise DynolineError(f"--rows {args.rows} must be at least --units {args.units} (a sample per unit)")
    if args.repeat < 1 or args.naive_repeat < 1:
        raise DynolineError("--repeat and --naive-repeat must be at least 1")
    if not 1 <= args.lines <= 100:
        raise DynolineError(f"--lines must be between 1 and 100, got {args.lines}")
    result = run(
        args.database_url, args.units, args.rows, args.repeat, args.naive_repeat, args.lines,
        settings=server_settings(args),
    )  # fmt: skip
    emit(result, args.json, render)
    return 0


@dataclass(frozen=True)
class Candidate:
    """A way to answer "latest sample for every unit", timed side by side with the others."""

    name: str
    label: str
    query: sql.Composed
    needs: str  # what the product would need for it; "" when it runs on the product schema as is
    runs: int
    warmup: int
    server_runs: int
    columns: tuple[int, ...] | None = None  # positions of the product's row it returns; None: all
    whole: bool = False  # fetched as one result instead of the product's chunks


def candidates(repeat: int, naive_repeat: int) -> list[Candidate]:
    return [
        Candidate(
            "latest_per_unit",
            "range scan of telemetry_latest's PK (product)",
            LATEST_PER_UNIT,
            "",
            repeat,
            3,
            repeat,
        ),
        Candidate(
            "latest_per_unit_whole",
            "the product's query fetched as one result, not in chunks (the previous product fetch)",
            LATEST_PER_UNIT,
            "",
            repeat,
            3,
            repeat,
            whole=True,
        ),
        Candidate(
            "latest_per_unit_dashboard",
            f"the product's query for {len(DASHBOARD_COLUMNS)} columns ({', '.join(DASHBOARD_COLUMNS)})",
            latest_per_unit_query(DASHBOARD_COLUMNS),
            "",
            repeat,
            3,
            repeat,
            tuple(TELEMETRY_COLUMNS.index(c) for c in DASHBOARD_COLUMNS),
        ),
        Candidate(
            "hinted_lateral",
            "LATERAL probe of telemetry's PK with the time hint (the previous product query)",
            LATEST_PER_UNIT_PROBE,
            "",
            repeat,
            3,
            repeat,
        ),
        Candidate(
            "naive_distinct_on", "DISTINCT ON over the line", LATEST_PER_UNIT_NAIVE, "", naive_repeat, 0, 1
        ),
        Candidate(
            "unhinted_lateral",
            "LATERAL probe of the PK without the time hint",
            LATEST_PER_UNIT_UNHINTED,
            "",
            repeat,
            3,
            repeat,
        ),
        Candidate(
            "exact_key_probe",
            "PK equality probe on a known last ts",
            EXACT_KEY_PROBE,
            "each unit's last ts kept up to date by the writer (e.g. unit_state.last_ts)",
            repeat,
            3,
            repeat,
        ),
    ]


def run(
    url: str | None,
    units: int,
    rows: int,
    repeat: int,
    naive_repeat: int,
    lines: int = 10,
    *,
    settings: Sequence[Setting] = (),
) -> QueryResult:
    with (
        bench_database(url, SCHEMA, keep=True, settings=settings) as db,
        connect(db.url, autocommit=True) as conn,
    ):
        info = machine(conn)
        build = ensure_data(conn, units, rows)
        build = replace(build, lines=ensure_other_lines(conn, units, lines, build))
        build = replace(build, latest_rows=fill_latest(conn))
        build_experiments(conn)
        cands = candidates(repeat, naive_repeat)
        measured = measure(conn, cands)
        answers = {c.name: project(fetch(conn, c), None) for c in cands}
        upkeep = latest_upkeep(conn, answers["latest_per_unit"])
        database = db.describe()
    reference = answers["latest_per_unit"]
    same = {c.name: answers[c.name] == project(reference, c.columns) for c in cands}
    return summarise(units, build, measured, same, upkeep, database, info)


def project(rows: list[tuple[object, ...]], columns: tuple[int, ...] | None) -> list[tuple[object, ...]]:
    return rows if columns is None else [tuple(r[i] for i in columns) for r in rows]


def summarise(
    units: int,
    build: Build,
    measured: dict[str, Measured],
    same: dict[str, bool],
    upkeep: Upkeep,
    database: str,
    info: Result,
) -> QueryResult:
    product = measured["latest_per_unit"]
    compared = {
        name: replace(
            m,
            same_answer_as_product=same[name],
            vs_product_server_median=ratio_or_none(m.server_median_ms, product.server_median_ms),
            vs_product_round_trip_median=ratio_or_none(m.median_ms, product.median_ms),
        )
        for name, m in measured.items()
    }
    product, naive = compared["latest_per_unit"], compared["naive_distinct_on"]
    plan = product.plan
    return QueryResult(
        database=database,
        line=LINE,
        units=units,
        table=build,
        latest_per_unit=product,
        naive_distinct_on=naive,
        baselines={k: v for k, v in compared.items() if k not in ("latest_per_unit", "naive_distinct_on")},
        latest_table_upkeep=upkeep,
        results_match=all(m.same_answer_as_product for m in compared.values()),
        ratios={
            "naive_vs_latest_server_median": naive.vs_product_server_median,
            "naive_vs_latest_round_trip_median": naive.vs_product_round_trip_median,
            "hinted_vs_latest_server_median": compared["hinted_lateral"].vs_product_server_median,
            "unhinted_vs_latest_server_median": compared["unhinted_lateral"].vs_product_server_median,
            "whole_vs_latest_round_trip_median": compared[
                "latest_per_unit_whole"
            ].vs_product_round_trip_median,
            "dashboard_vs_latest_round_trip_median": compared[
                "latest_per_unit_dashboard"
            ].vs_product_round_trip_median,
        },
        targets=Targets(
            target_ms=TARGET_MS,
            server_median_le_target=product.server_median_ms <= TARGET_MS,
            server_p95_le_target=product.server_p95_ms <= TARGET_MS,
            round_trip_median_le_target=product.median_ms <= TARGET_MS,
            round_trip_p95_le_target=product.p95_ms <= TARGET_MS,
            uses_index=bool(plan.index_scans_on_telemetry or plan.index_scans_on_latest),
            no_seq_scan_on_telemetry=not plan.seq_scans_on_telemetry,
            no_seq_scan_on_latest=not plan.seq_scans_on_latest,
        ),
        machine=info,
    )


def ratio_or_none(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def next_sample(row: tuple[object, ...]) -> tuple[object, ...]:
    cycle, ts = row[2], row[3]
    assert isinstance(cycle, int) and isinstance(ts, datetime)
    return (row[0], row[1], cycle + 1, ts + timedelta(seconds=1), *row[4:])


def latest_upkeep(conn: Conn, latest: list[tuple[object, ...]], rounds: int = 5) -> Upkeep:
    """Each round stores every unit's next sample as the simulator does and is rolled back.

    `copy_rows`, then the store's `upsert_latest` in the same transaction, so the benchmark's data stays
    as built. The commit (one WAL flush, shared by both) is not included.
    """
    rows = list(latest)
    copy_ms: list[float] = []
    upsert_ms: list[float] = []
    for _ in range(rounds):
        rows = [next_sample(r) for r in rows]
        with conn.transaction(force_rollback=True):
            began = time.perf_counter()
            copy_rows(conn, rows)
            copied = time.perf_counter()
            upsert_latest(conn, rows)
            done = time.perf_counter()
        copy_ms.append((copied - began) * 1000)
        upsert_ms.append((done - copied) * 1000)
    copy, upsert = statistics.median(copy_ms), statistics.median(upsert_ms)
    return Upkeep(
        rows_per_round=len(rows),
        rounds=rounds,
        copy_median_ms=round(copy, 2),
        upsert_median_ms=round(upsert, 2),
        upsert_us_per_row=round(upsert * 1000 / len(rows), 2) if rows else None,
        upsert_vs_copy=ratio_or_none(upsert, copy),
    )


def measure(conn: Conn, cands: list[Candidate]) -> dict[str, Measured]:
    """Round trips and server times, the candidates interleaved run by run.

    Interleaving spreads whatever else the machine is doing evenly over the candidates, so their
    ratios hold even when the absolute figures wobble.
    """
    total: dict[str, list[float]] = {c.name: [] for c in cands}
    freed: dict[str, list[float]] = {c.name: [] for c in cands}
    server: dict[str, list[float]] = {c.name: [] for c in cands}
    plans: dict[str, PlanSummary] = {}
    rows: dict[str, int] = {}
    for c in cands:
        for _ in range(c.warmup):
            round_trip(conn, c)
    for i in range(max(max(c.runs, c.server_runs) for c in cands)):
        for c in cands:
            if i < c.runs:
                t = round_trip(conn, c)
                total[c.name].append(t.in_hand_ms)
                freed[c.name].append(t.freed_ms)
                rows[c.name] = t.rows
            if i < c.server_runs:
                plans[c.name] = explain(conn, c.query, params(LINE))
                server[c.name].append(plans[c.name].execution_ms)
        if i % 10 == 9:
            log.info("  %d rounds timed", i + 1)
    return {
        c.name: Measured(
            label=c.label,
            needs=c.needs or None,
            runs=c.runs,
            warmup_runs=c.warmup,
            rows=rows[c.name],
            median_ms=round(statistics.median(total[c.name]), 2),
            p95_ms=round(percentile(total[c.name], 0.95), 2),
            min_ms=round(min(total[c.name]), 2),
            max_ms=round(max(total[c.name]), 2),
            freed_median_ms=round(statistics.median(freed[c.name]), 2),
            server_runs=c.server_runs,
            server_median_ms=round(statistics.median(server[c.name]), 2),
            server_p95_ms=round(percentile(server[c.name], 0.95), 2),
            plan=plans[c.name],
        )
        for c in cands
    }


@dataclass(frozen=True)
class RoundTrip:
    in_hand_ms: float  # the call, until its rows are in hand: what a caller waits for
    freed_ms: float  # the same, plus dropping the rows (10,000 x 28 objects): what a bench loop pays
    rows: int


def round_trip(conn: Conn, c: Candidate) -> RoundTrip:
    """As the product calls it: binary rows fetched into Python (`fetch_binary`).

    The rows are freed after the clock for the round trip stops, and timed apart: freeing ~280,000
    objects costs a few ms that fall in the caller's code when it is done with them, not in the query.
    """
    began = time.perf_counter()
    got = fetch(conn, c)
    in_hand = time.perf_counter()
    n = len(got)
    del got
    done = time.perf_counter()
    return RoundTrip((in_hand - began) * 1000, (done - began) * 1000, n)


def fetch(conn: Conn, c: Candidate) -> list[tuple[object, ...]]:
    return fetch_binary(conn, c.query, params(LINE), chunk=None if c.whole else FETCH_CHUNK_ROWS)
