"""`dynoline bench query`: "latest sample for every unit" over a telemetry table of ≥ 20 M rows.

The table is filled server-side (INSERT … SELECT from generate_series: minutes, not the hours a
client would take), ANALYZEd, and recorded in `bench_build` so a later run against the same
`--database-url` reuses it. The product's query (`workloads.store.queries.latest_per_unit`, a read of
the one-row-per-unit `telemetry_latest`) is timed over repeated runs next to the probes of telemetry it
replaced and the naive DISTINCT ON, and its plan is checked for index scans and for the absence of any
sequential scan on telemetry or telemetry_latest.

A factory runs many lines into one database: besides the benchmarked line, `--lines` minus one other lines
of as many units get a couple of ticks each, so telemetry_latest holds a row per unit of every line,
as it would in production (and the query has to pick its line out of them).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from workloads.catalog import SENSOR_COLUMNS, SETTING_COLUMNS, TELEMETRY_COLUMNS
from workloads.errors import DynolineError
from workloads.store.connection import connect
from workloads.store.partitions import ensure_partitions
from workloads.store.queries import (
    LATEST_PER_UNIT,
    LATEST_PER_UNIT_NAIVE,
    LATEST_PER_UNIT_PROBE,
    LATEST_PER_UNIT_UNHINTED,
    params,
)
from workloads.store.unit_state import record_line, register_units
from workloads.store.writer import copy_rows, upsert_latest

from .harness import (
    Conn,
    Result,
    add_common_arguments,
    bench_database,
    emit,
    machine,
    machine_lines,
    percentile,
    table,
)

log = logging.getLogger(__name__)

SCHEMA = "dynoline_bench_query"
LINE = "bench-query"
TARGET_MS = 20.0
RETENTION_DAYS = 7  # partitions made for a week back and two days ahead, as a running line has them
DAYS_AHEAD = 2
CHUNK_ROWS = 1_000_000  # rows per INSERT … SELECT statement (one transaction each)
OTHER_TICKS = 2  # ticks of each other line: they are there for telemetry_latest, not for size

# Filler values: FD001's per-channel mean and standard deviation (train_FD001), uniform noise of that
# spread. The query does not look at them; they give rows the real width and realistic contents.
FD001_MOMENTS: dict[str, tuple[float, float]] = {
    "setting_1": (0.0, 0.0022),
    "setting_2": (0.0, 0.0003),
    "setting_3": (100.0, 0.0),
    "t2": (518.67, 0.0),
    "t24": (642.6809, 0.5),
    "t30": (1590.5231, 6.131),
    "t50": (1408.9338, 9.0004),
    "p2": (14.62, 0.0),
    "p15": (21.6098, 0.0014),
    "p30": (553.3677, 0.8851),
    "nf": (2388.0967, 0.071),
    "nc": (9065.2429, 22.0823),
    "epr": (1.3, 0.0),
    "ps30": (47.5412, 0.2671),
    "phi": (521.4135, 0.7375),
    "nrf": (2388.0962, 0.0719),
    "nrc": (8143.7527, 19.0757),
    "bpr": (8.4421, 0.0375),
    "farb": (0.03, 0.0),
    "htbleed": (393.2107, 1.5487),
    "nf_dmd": (2388.0, 0.0),
    "pcnfr_dmd": (100.0, 0.0),
    "w31": (38.8163, 0.1807),
    "w32": (23.2897, 0.1082),
}
assert tuple(FD001_MOMENTS) == SETTING_COLUMNS + SENSOR_COLUMNS

_COLS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)

_BUILD_TABLE = sql.SQL(
    "CREATE TABLE IF NOT EXISTS bench_build ("
    " line text PRIMARY KEY, units integer NOT NULL, ticks integer NOT NULL, rows bigint NOT NULL,"
    " first_ts timestamptz NOT NULL, last_ts timestamptz NOT NULL, seconds double precision NOT NULL,"
    " built_at timestamptz NOT NULL DEFAULT now())"
)


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
    result = run(args.database_url, args.units, args.rows, args.repeat, args.naive_repeat, args.lines)
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


# Experiment: a structure the product does not have, built in the benchmark's schema to price it.
EXACT_KEY_PROBE = sql.SQL(
    "SELECT {t_cols} FROM bench_unit_last u JOIN telemetry t"
    " ON t.line = u.line AND t.unit_id = u.unit_id AND t.ts = u.last_ts"
    " WHERE u.line = %(line)s ORDER BY u.unit_id"
).format(t_cols=sql.SQL(", ").join(sql.Identifier("t", c) for c in TELEMETRY_COLUMNS))


def run(url: str | None, units: int, rows: int, repeat: int, naive_repeat: int, lines: int = 10) -> Result:
    with bench_database(url, SCHEMA, keep=True) as db, connect(db.url, autocommit=True) as conn:
        info = machine(conn)
        build = ensure_data(conn, units, rows)
        build["lines"] = ensure_other_lines(conn, units, lines, build)
        build["latest_rows"] = fill_latest(conn)
        build_experiments(conn)
        cands = candidates(repeat, naive_repeat)
        measured = measure(conn, cands)
        answers = {c.name: fetch(conn, c.query) for c in cands}
        upkeep = latest_upkeep(conn, answers["latest_per_unit"])
        database = db.describe()
    return summarise(units, build, measured, answers, upkeep, database, info)


def summarise(
    units: int,
    build: Result,
    measured: dict[str, Result],
    answers: dict[str, list[tuple[object, ...]]],
    upkeep: Result,
    database: str,
    info: Result,
) -> Result:
    product = measured["latest_per_unit"]
    plan = product["plan"]
    reference = answers["latest_per_unit"]
    for name, m in measured.items():
        m["same_answer_as_product"] = answers[name] == reference
        m["vs_product_server_median"] = ratio_or_none(m["server_median_ms"], product["server_median_ms"])
        m["vs_product_round_trip_median"] = ratio_or_none(m["median_ms"], product["median_ms"])
    naive = measured["naive_distinct_on"]
    return {
        "benchmark": "query",
        "database": database,
        "line": LINE,
        "units": units,
        "table": build,
        "latest_per_unit": product,
        "naive_distinct_on": naive,
        "baselines": {k: v for k, v in measured.items() if k not in ("latest_per_unit", "naive_distinct_on")},
        "latest_table_upkeep": upkeep,
        "results_match": all(m["same_answer_as_product"] for m in measured.values()),
        "ratios": {
            "naive_vs_latest_server_median": naive["vs_product_server_median"],
            "naive_vs_latest_round_trip_median": naive["vs_product_round_trip_median"],
            "hinted_vs_latest_server_median": measured["hinted_lateral"]["vs_product_server_median"],
            "unhinted_vs_latest_server_median": measured["unhinted_lateral"]["vs_product_server_median"],
        },
        "targets": {
            "target_ms": TARGET_MS,
            "server_median_le_target": product["server_median_ms"] <= TARGET_MS,
            "server_p95_le_target": product["server_p95_ms"] <= TARGET_MS,
            "round_trip_median_le_target": product["median_ms"] <= TARGET_MS,
            "round_trip_p95_le_target": product["p95_ms"] <= TARGET_MS,
            "uses_index": bool(plan["index_scans_on_telemetry"] or plan["index_scans_on_latest"]),
            "no_seq_scan_on_telemetry": not plan["seq_scans_on_telemetry"],
            "no_seq_scan_on_latest": not plan["seq_scans_on_latest"],
        },
        "machine": info,
    }


def ratio_or_none(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def build_experiments(conn: Conn) -> None:
    """The experiment's structure, from the current data: each unit's last ts."""
    last = sql.SQL(
        "CREATE TABLE bench_unit_last AS SELECT line, unit_id, ts AS last_ts FROM ({}) latest"
    ).format(LATEST_PER_UNIT)
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS bench_unit_last, bench_latest")
        conn.execute(last, params(LINE))
        conn.execute("ALTER TABLE bench_unit_last ADD PRIMARY KEY (line, unit_id)")
    conn.execute("VACUUM ANALYZE bench_unit_last")


def next_sample(row: tuple[object, ...]) -> tuple[object, ...]:
    cycle, ts = row[2], row[3]
    assert isinstance(cycle, int) and isinstance(ts, datetime)
    return (row[0], row[1], cycle + 1, ts + timedelta(seconds=1), *row[4:])


def latest_upkeep(conn: Conn, latest: list[tuple[object, ...]], rounds: int = 5) -> Result:
    """What keeping telemetry_latest current costs the writer, next to the COPY it rides along with.

    Each round stores every unit's next sample as the simulator does (`copy_rows`, then the store's
    `upsert_latest` in the same transaction) and is rolled back, so the benchmark's data stays as
    built. The commit (one WAL flush, shared by both) is not included.
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
    return {
        "rows_per_round": len(rows),
        "rounds": rounds,
        "copy_median_ms": round(copy, 2),
        "upsert_median_ms": round(upsert, 2),
        "upsert_us_per_row": round(upsert * 1000 / len(rows), 2) if rows else None,
        "upsert_vs_copy": ratio_or_none(upsert, copy),
    }


# ------------------------------------------------------------------ the data


def ensure_data(conn: Conn, units: int, rows: int) -> Result:
    """Reuse a matching earlier build, or (re)fill telemetry for the bench line; returns its description."""
    conn.execute(_BUILD_TABLE)
    found = conn.execute(
        "SELECT units, ticks, rows, first_ts, last_ts, seconds, built_at FROM bench_build WHERE line = %s",
        (LINE,),
    ).fetchone()
    if found is not None and found[0] == units and int(str(found[2])) >= rows:
        log.info("reusing the %s-row telemetry built at %s", found[2], found[6])
        return describe_build(conn, found, reused=True)
    log.info("building telemetry: %d rows for %d units (server-side INSERT … SELECT)", rows, units)
    conn.execute("TRUNCATE bench_build")  # every line is rebuilt with the new bench line
    conn.execute("TRUNCATE telemetry, telemetry_latest")  # the bench schema's own tables
    conn.execute("TRUNCATE unit_state")
    ticks = math.ceil(rows / units)
    last = datetime.now(UTC).replace(microsecond=0)
    first = last - timedelta(seconds=ticks - 1)
    ensure_partitions(conn, last - timedelta(days=RETENTION_DAYS), last + timedelta(days=DAYS_AHEAD))
    record_line(conn, LINE, timedelta(days=RETENTION_DAYS))
    register_units(conn, LINE, range(units))
    began = time.monotonic()
    step = max(1, CHUNK_ROWS // units)
    for lo in range(0, ticks, step):
        hi = min(ticks, lo + step) - 1
        conn.execute(fill_sql(), {"line": LINE, "first": first, "lo": lo, "hi": hi, "units": units})
        log.info("  ticks %d..%d of %d stored", lo, hi, ticks)
    conn.execute("ANALYZE telemetry")
    conn.execute("ANALYZE unit_state")
    seconds = time.monotonic() - began
    conn.execute(
        "INSERT INTO bench_build (line, units, ticks, rows, first_ts, last_ts, seconds)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (LINE, units, ticks, ticks * units, first, last, seconds),
    )
    found = conn.execute(
        "SELECT units, ticks, rows, first_ts, last_ts, seconds, built_at FROM bench_build WHERE line = %s",
        (LINE,),
    ).fetchone()
    assert found is not None
    return describe_build(conn, found, reused=False)


def other_line(k: int) -> str:
    return f"{LINE}-{k}"


def ensure_other_lines(conn: Conn, units: int, lines: int, build: Result) -> int:
    """The factory's other lines: --units units each, OTHER_TICKS ticks ending with the bench line's."""
    last = datetime.fromisoformat(build["last_ts"])
    first = last - timedelta(seconds=OTHER_TICKS - 1)
    for k in range(2, lines + 1):
        line = other_line(k)
        found = conn.execute("SELECT units FROM bench_build WHERE line = %s", (line,)).fetchone()
        if found is not None and found[0] == units:
            continue
        log.info("adding line %s: %d units, %d ticks", line, units, OTHER_TICKS)
        with conn.transaction():
            conn.execute("DELETE FROM telemetry WHERE line = %s", (line,))
            conn.execute("DELETE FROM bench_build WHERE line = %s", (line,))
            record_line(conn, line, timedelta(days=RETENTION_DAYS))
            register_units(conn, line, range(units))
            conn.execute(
                fill_sql(), {"line": line, "first": first, "lo": 0, "hi": OTHER_TICKS - 1, "units": units}
            )
            conn.execute(
                "INSERT INTO bench_build (line, units, ticks, rows, first_ts, last_ts, seconds)"
                " VALUES (%s, %s, %s, %s, %s, %s, 0)",
                (line, units, OTHER_TICKS, OTHER_TICKS * units, first, last),
            )
    with conn.transaction():  # lines beyond --lines from an earlier run
        extra = [
            str(r[0])
            for r in conn.execute(
                "SELECT line FROM bench_build WHERE line LIKE %s AND line <> ALL(%s)",
                (f"{LINE}-%", [other_line(k) for k in range(2, lines + 1)]),
            )
        ]
        for line in extra:
            conn.execute("DELETE FROM telemetry WHERE line = %s", (line,))
            conn.execute("DELETE FROM unit_state WHERE line = %s", (line,))
            conn.execute("DELETE FROM bench_build WHERE line = %s", (line,))
    conn.execute("ANALYZE unit_state")
    return lines


def fill_latest(conn: Conn) -> int:
    """telemetry_latest as the writer leaves it: the newest row of every unit of every line.

    Filled server-side after the build (the build bypasses the writer) by the telemetry probe of each
    line, which gives the same rows as DISTINCT ON in a fraction of its time; then VACUUM ANALYZE.
    """
    insert = sql.SQL("INSERT INTO telemetry_latest ({}) SELECT * FROM ({}) latest").format(
        _COLS, LATEST_PER_UNIT_PROBE
    )
    with conn.transaction():
        conn.execute("TRUNCATE telemetry_latest")
        for (line,) in conn.execute("SELECT DISTINCT line FROM unit_state ORDER BY 1").fetchall():
            conn.execute(insert, params(str(line)))
    conn.execute("VACUUM ANALYZE telemetry_latest")
    count = conn.execute("SELECT count(*) FROM telemetry_latest").fetchone()
    assert count is not None
    return int(str(count[0]))


def fill_sql() -> sql.Composed:
    """Ticks lo..hi of every unit, tick-major like a streaming line writes them, in one statement."""
    values = [
        sql.SQL("{} + {} * (random() - 0.5) * 3.4641").format(sql.Literal(mean), sql.Literal(sd))
        if sd
        else sql.Literal(mean)
        for mean, sd in FD001_MOMENTS.values()
    ]
    return sql.SQL(
        "INSERT INTO telemetry ({cols})"
        " SELECT %(line)s, u, k + 1, %(first)s::timestamptz + make_interval(secs => k), {values}"
        " FROM generate_series(%(lo)s::int, %(hi)s::int) AS k,"
        " generate_series(0, %(units)s::int - 1) AS u"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS),
        values=sql.SQL(", ").join(values),
    )


def describe_build(conn: Conn, found: tuple[Any, ...], *, reused: bool) -> Result:
    units, ticks, rows, first, last, seconds, built_at = found
    size = conn.execute(
        "SELECT coalesce(sum(pg_table_size(inhrelid)), 0), coalesce(sum(pg_indexes_size(inhrelid)), 0),"
        " count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass"
    ).fetchone()
    assert size is not None
    return {
        "rows": int(rows),
        "units": int(units),
        "ticks_per_unit": int(ticks),
        "first_ts": first.isoformat(),
        "last_ts": last.isoformat(),
        "partitions": int(str(size[2])),
        "heap_bytes": int(str(size[0])),
        "index_bytes": int(str(size[1])),
        "build_seconds": round(float(seconds), 1),
        "build_rows_per_s": round(int(rows) / float(seconds)) if seconds else None,
        "built_at": built_at.isoformat(),
        "reused": reused,
    }


# ------------------------------------------------------------------ timing and plans


def measure(conn: Conn, cands: list[Candidate]) -> dict[str, Result]:
    """Round trips and server times, the candidates interleaved run by run.

    Interleaving spreads whatever else the machine is doing evenly over the candidates, so their
    ratios hold even when the absolute figures wobble.
    """
    total: dict[str, list[float]] = {c.name: [] for c in cands}
    execute: dict[str, list[float]] = {c.name: [] for c in cands}
    server: dict[str, list[float]] = {c.name: [] for c in cands}
    plans: dict[str, Result] = {}
    rows: dict[str, int] = {}
    for c in cands:
        for _ in range(c.warmup):
            round_trip(conn, c.query)
    for i in range(max(max(c.runs, c.server_runs) for c in cands)):
        for c in cands:
            if i < c.runs:
                t_all, t_exec, rows[c.name] = round_trip(conn, c.query)
                total[c.name].append(t_all)
                execute[c.name].append(t_exec)
            if i < c.server_runs:
                plans[c.name] = explain(conn, c.query)
                server[c.name].append(plans[c.name]["execution_ms"])
        if i % 10 == 9:
            log.info("  %d rounds timed", i + 1)
    return {
        c.name: {
            "label": c.label,
            "needs": c.needs or None,
            "runs": c.runs,
            "warmup_runs": c.warmup,
            "rows": rows[c.name],
            "median_ms": round(statistics.median(total[c.name]), 2),
            "p95_ms": round(percentile(total[c.name], 0.95), 2),
            "min_ms": round(min(total[c.name]), 2),
            "max_ms": round(max(total[c.name]), 2),
            "execute_median_ms": round(statistics.median(execute[c.name]), 2),
            "server_runs": c.server_runs,
            "server_median_ms": round(statistics.median(server[c.name]), 2),
            "server_p95_ms": round(percentile(server[c.name], 0.95), 2),
            "plan": plans[c.name],
        }
        for c in cands
    }


def round_trip(conn: Conn, query: sql.Composed) -> tuple[float, float, int]:
    """As the product calls it: binary results fetched into Python rows. (total ms, execute ms, rows)"""
    with conn.cursor(binary=True) as cur:
        t0 = time.perf_counter()
        cur.execute(query, params(LINE))
        t1 = time.perf_counter()
        n = len(cur.fetchall())
        t2 = time.perf_counter()
    return (t2 - t0) * 1000, (t1 - t0) * 1000, n


def fetch(conn: Conn, query: sql.Composed) -> list[tuple[object, ...]]:
    with conn.cursor(binary=True) as cur:
        cur.execute(query, params(LINE))
        return cur.fetchall()


def explain(conn: Conn, query: sql.Composed) -> Result:
    """One execution inside the server (EXPLAIN ANALYZE without per-node timing), summarised."""
    row = conn.execute(
        sql.SQL("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {}").format(query), params(LINE)
    ).fetchone()
    assert row is not None
    doc = row[0] if isinstance(row[0], list) else json.loads(str(row[0]))
    return plan_summary(doc[0])


def plan_summary(explained: dict[str, Any]) -> Result:
    """What the plan did to telemetry: which index scans ran, any sequential scan (even unexecuted)."""
    index_scans: dict[str, int] = {}
    seq_scans: list[str] = []
    latest_index_scans: dict[str, int] = {}
    latest_seq_scans: list[str] = []
    node_types: dict[str, int] = {}
    for node in walk(explained["Plan"]):
        kind = str(node.get("Node Type"))
        node_types[kind] = node_types.get(kind, 0) + 1
        relation = str(node.get("Relation Name") or "")
        index = str(node.get("Index Name") or "")
        if is_telemetry(relation) or index.startswith("telemetry_p"):
            into, seqs = index_scans, seq_scans
        elif relation == "telemetry_latest" or index == "telemetry_latest_pkey":
            into, seqs = latest_index_scans, latest_seq_scans
        else:
            continue
        if kind.startswith("Seq Scan") or kind == "Parallel Seq Scan":
            seqs.append(relation)
        elif "Index" in kind and int(node.get("Actual Loops", 0)) > 0:
            name = f"{kind} using {index}"
            into[name] = into.get(name, 0) + int(node.get("Actual Loops", 0))
    top = explained["Plan"]
    return {
        "execution_ms": round(float(explained.get("Execution Time", 0.0)), 2),
        "planning_ms": round(float(explained.get("Planning Time", 0.0)), 2),
        "shared_hit_blocks": int(top.get("Shared Hit Blocks", 0)),
        "shared_read_blocks": int(top.get("Shared Read Blocks", 0)),
        "temp_written_blocks": int(top.get("Temp Written Blocks", 0)),
        "index_scans_on_telemetry": index_scans,  # "<scan> using <index>": executed loops
        "seq_scans_on_telemetry": sorted(set(seq_scans)),
        "index_scans_on_latest": latest_index_scans,
        "seq_scans_on_latest": sorted(set(latest_seq_scans)),
        "node_types": node_types,
        "outline": outline(top),
    }


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from walk(child)


def outline(node: dict[str, Any], depth: int = 0) -> list[str]:
    """The plan as indented lines (node, relation or index, loops), collapsing repeated siblings."""
    what = str(node.get("Node Type"))
    if node.get("Index Name"):
        what += f" using {node['Index Name']}"
    elif node.get("Relation Name"):
        what += f" on {node['Relation Name']}"
    loops = int(node.get("Actual Loops", 0))
    lines = [f"{'  ' * depth}{what} (rows={node.get('Actual Rows')}, loops={loops})"]
    children = node.get("Plans", [])
    executed = [c for c in children if int(c.get("Actual Loops", 0)) > 0]
    for child in executed:
        lines.extend(outline(child, depth + 1))
    skipped = len(children) - len(executed)
    if skipped:
        lines.append(f"{'  ' * (depth + 1)}… {skipped} more child plan(s) never executed")
    return lines


def is_telemetry(relation: str) -> bool:
    return relation == "telemetry" or relation.startswith("telemetry_p")


# ------------------------------------------------------------------ output


def render(r: Result) -> str:
    t, tg = r["table"], r["targets"]
    built = "reused" if t["reused"] else f"built in {t['build_seconds']} s, {t['build_rows_per_s']:,} rows/s"
    head = [
        f"dynoline bench query: latest sample for every unit of {r['units']:,} units",
        f"table: {t['rows']:,} rows, {t['partitions']} partitions, heap {t['heap_bytes'] / 2**30:.1f} GiB,"
        f" indexes {t['index_bytes'] / 2**30:.1f} GiB ({built});"
        f" {t['lines']} lines in the database, telemetry_latest {t['latest_rows']:,} rows",
        f"database: {r['database']}",
        "",
    ]
    measured = {"latest_per_unit": r["latest_per_unit"], "naive_distinct_on": r["naive_distinct_on"]}
    measured.update(r["baselines"])
    rows = [
        [
            name,
            m["runs"],
            m["rows"],
            m["server_median_ms"],
            m["median_ms"],
            m["p95_ms"],
            m["vs_product_server_median"],
            "yes" if m["plan"]["seq_scans_on_telemetry"] or m["plan"]["seq_scans_on_latest"] else "no",
            "yes" if m["same_answer_as_product"] else "NO",
        ]
        for name, m in measured.items()
    ]
    body = table(
        [
            "query",
            "runs",
            "rows",
            "server ms",
            "round trip ms",
            "round trip p95",
            "x product",
            "seq scan",
            "same answer",
        ],
        rows,
    )
    plan = r["latest_per_unit"]["plan"]
    up = r["latest_table_upkeep"]
    tail = [
        "",
        "server ms: median execution time in the server (EXPLAIN ANALYZE, TIMING OFF);"
        " round trip: execute + fetch of binary rows into Python, as the product calls it",
        f"target ≤ {tg['target_ms']:g} ms for latest_per_unit:"
        f" server median {_met(tg['server_median_le_target'])},"
        f" round trip median {_met(tg['round_trip_median_le_target'])}",
        f"plan of latest_per_unit: {plan['index_scans_on_latest'] or plan['index_scans_on_telemetry']},"
        f" seq scans: {plan['seq_scans_on_latest'] + plan['seq_scans_on_telemetry'] or 'none'};"
        f" buffers hit {plan['shared_hit_blocks']:,} read {plan['shared_read_blocks']:,}",
        *("  " + line for line in plan["outline"]),
        *(f"{name} needs {m['needs']}" for name, m in r["baselines"].items() if m.get("needs")),
        f"telemetry_latest upkeep: storing {up['rows_per_round']:,} rows (one per unit) costs"
        f" {up['copy_median_ms']} ms of COPY into telemetry plus {up['upsert_median_ms']} ms of upsert"
        f" ({up['upsert_us_per_row']} µs per row, {up['upsert_vs_copy']} times the COPY)",
        *machine_lines(r["machine"]),
    ]
    return "\n".join(head) + body + "\n" + "\n".join(tail)


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
