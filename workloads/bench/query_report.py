"""The results of `dynoline bench query`, typed, and how they print.

`--json` prints them field by field (`harness.emit`), so the field names are the JSON keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.store.queries import FETCH_CHUNK_ROWS

from .harness import Result, machine_lines, table
from .query_data import Build
from .query_plan import PlanSummary


@dataclass(frozen=True)
class Measured:
    """One candidate's timings (ms), its plan, and how it compares with the product."""

    label: str
    needs: str | None
    runs: int
    warmup_runs: int
    rows: int
    median_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    freed_median_ms: float  # the round trip plus freeing its rows (the round trip is until they are in hand)
    server_runs: int
    server_median_ms: float
    server_p95_ms: float
    plan: PlanSummary
    same_answer_as_product: bool = False
    vs_product_server_median: float | None = None
    vs_product_round_trip_median: float | None = None


@dataclass(frozen=True)
class Upkeep:
    """What keeping telemetry_latest current costs the writer, next to the COPY it rides along with."""

    rows_per_round: int
    rounds: int
    copy_median_ms: float
    upsert_median_ms: float
    upsert_us_per_row: float | None
    upsert_vs_copy: float | None


@dataclass(frozen=True)
class Targets:
    target_ms: float
    server_median_le_target: bool
    server_p95_le_target: bool
    round_trip_median_le_target: bool
    round_trip_p95_le_target: bool
    uses_index: bool
    no_seq_scan_on_telemetry: bool
    no_seq_scan_on_latest: bool


@dataclass(frozen=True)
class QueryResult:
    """What `dynoline bench query` prints (`--json`: this, field by field)."""

    database: str
    line: str
    units: int
    table: Build
    latest_per_unit: Measured
    naive_distinct_on: Measured
    baselines: dict[str, Measured]
    latest_table_upkeep: Upkeep
    results_match: bool
    ratios: dict[str, float | None]
    targets: Targets
    machine: Result
    benchmark: str = "query"


def render(r: QueryResult) -> str:
    t, tg = r.table, r.targets
    built = "reused" if t.reused else f"built in {t.build_seconds} s, {t.build_rows_per_s or 0:,} rows/s"
    head = [
        f"dynoline bench query: latest sample for every unit of {r.units:,} units",
        f"table: {t.rows:,} rows, {t.partitions} partitions, heap {t.heap_bytes / 2**30:.1f} GiB,"
        f" indexes {t.index_bytes / 2**30:.1f} GiB ({built});"
        f" {t.lines} lines in the database, telemetry_latest {t.latest_rows:,} rows",
        f"database: {r.database}",
        "",
    ]
    measured = {"latest_per_unit": r.latest_per_unit, "naive_distinct_on": r.naive_distinct_on, **r.baselines}
    rows = [
        [
            name,
            m.runs,
            m.rows,
            m.server_median_ms,
            m.median_ms,
            m.p95_ms,
            m.freed_median_ms,
            m.vs_product_server_median,
            "yes" if m.plan.seq_scan else "no",
            "yes" if m.same_answer_as_product else "NO",
        ]
        for name, m in measured.items()
    ]
    headers = [
        "query",
        "runs",
        "rows",
        "server ms",
        "round trip ms",
        "round trip p95",
        "+ freeing ms",
        "x product",
        "seq scan",
    ]
    body = table([*headers, "same answer"], rows)
    plan = r.latest_per_unit.plan
    up = r.latest_table_upkeep
    tail = [
        "",
        "server ms: median execution time in the server (EXPLAIN ANALYZE, TIMING OFF);"
        " round trip: execute + fetch of binary rows into Python, as the product calls it"
        f" (in chunks of {FETCH_CHUNK_ROWS} rows; latest_per_unit_whole: as one result), until the rows"
        " are in hand; + freeing: the median of the same runs with dropping the rows included",
        f"target ≤ {tg.target_ms:g} ms for latest_per_unit:"
        f" server median {_met(tg.server_median_le_target)},"
        f" round trip median {_met(tg.round_trip_median_le_target)}",
        f"plan of latest_per_unit: {plan.index_scans_on_latest or plan.index_scans_on_telemetry},"
        f" seq scans: {plan.seq_scans_on_latest + plan.seq_scans_on_telemetry or 'none'};"
        f" buffers hit {plan.shared_hit_blocks:,} read {plan.shared_read_blocks:,}",
        *("  " + line for line in plan.outline),
        *(f"{name} needs {m.needs}" for name, m in r.baselines.items() if m.needs),
        f"telemetry_latest upkeep: storing {up.rows_per_round:,} rows (one per unit) costs"
        f" {up.copy_median_ms} ms of COPY into telemetry plus {up.upsert_median_ms} ms of upsert"
        f" ({up.upsert_us_per_row} µs per row, {up.upsert_vs_copy} times the COPY)",
        *machine_lines(r.machine),
    ]
    return "\n".join(head) + body + "\n" + "\n".join(tail)


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
