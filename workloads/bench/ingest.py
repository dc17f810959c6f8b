"""`dynoline bench ingest`: rows/s of five ways to store the same rows in the same database.

- `copy`: the simulator itself (`Simulator.run` in backfill mode): source → row → binary COPY in
  micro-batches, generation included, exactly the path a shard streams through, with its default
  `latestInterval` (1 s: `telemetry_latest` kept by a second connection, simulator/latest.py).
- `copy_latest_per_batch`: the same with `latestInterval: 0s`, the latest table upserted in every
  batch's transaction (the only way before): what the interval saves, side by side.
- `server_copy`: PostgreSQL's own `COPY telemetry FROM '<file>'` of the very rows `copy` stored,
  written beforehand to a file the server can read: the practical limit of the server.
- `executemany`: psycopg's executemany of INSERTs (pipelined), one commit.
- `seed_insert`: one INSERT and one COMMIT per row, as the prototype did; slow, so it is measured on
  the first `--seed-insert-rows` rows only.

Every method starts from an empty table (TRUNCATE, then CHECKPOINT so no method pays for another's
dirty pages) and its stored row count is checked.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.errors import DynolineError
from workloads.store.connection import connect, first_line
from workloads.store.rows import one

from .harness import (
    BenchDatabase,
    Conn,
    Result,
    Setting,
    add_common_arguments,
    bench_database,
    emit,
    machine,
    machine_lines,
    rate,
    ratio,
    server_settings,
    table,
)

log = logging.getLogger(__name__)

SCHEMA = "dynoline_bench_ingest"
LINE = "bench-ingest"
METHODS = ("seed_insert", "executemany", "copy", "copy_latest_per_batch", "server_copy")
TARGET_VS_SEED = 50.0  # copy ≥ 50x seed_insert
TARGET_VS_SERVER = 0.6  # copy ≥ 60% of server_copy

Row = tuple[object, ...]

_COLS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)
_INSERT = sql.SQL("INSERT INTO telemetry ({}) VALUES ({})").format(
    _COLS, sql.SQL(", ").join(sql.Placeholder() * len(TELEMETRY_COLUMNS))
)
# Units whose latest-table row is not their newest telemetry row: 0 once a run has stopped cleanly.
_LATEST_BEHIND = (
    "SELECT count(*) FROM (SELECT DISTINCT ON (unit_id) unit_id, ts FROM telemetry WHERE line = %s"
    " ORDER BY unit_id, ts DESC) t LEFT JOIN telemetry_latest l ON l.line = %s"
    " AND l.unit_id = t.unit_id AND l.ts = t.ts WHERE l.unit_id IS NULL"
)
_SELECT_LINE = sql.SQL("SELECT {} FROM telemetry WHERE line = {} ORDER BY ts, unit_id").format(
    _COLS, sql.Literal(LINE)
)


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench_sub.add_parser(
        "ingest",
        help="rows/s: seed_insert, executemany, the simulator's COPY path, server-side COPY",
        description="Store the same rows four ways in the same database and compare rows/s.",
    )
    add_common_arguments(p)
    p.add_argument("--rows", type=int, default=500_000, help="rows per method (default 500000)")
    p.add_argument("--units", type=int, default=1000, help="units the rows are spread over (default 1000)")
    p.add_argument(
        "--seed-insert-rows",
        type=int,
        default=5000,
        help="rows for the one-commit-per-row baseline, a prefix of the data (default 5000)",
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="rounds of all methods; figures are medians (default 3)"
    )
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.units < 1:
        raise DynolineError(f"--units must be at least 1, got {args.units}")
    if args.rows < args.units:
        raise DynolineError(f"--rows {args.rows} must be at least --units {args.units}")
    if args.seed_insert_rows < 1:
        raise DynolineError(f"--seed-insert-rows must be at least 1, got {args.seed_insert_rows}")
    if not 1 <= args.rounds <= 20:
        raise DynolineError(f"--rounds must be between 1 and 20, got {args.rounds}")
    result = run(
        args.database_url, args.rows, args.units, args.seed_insert_rows, args.rounds,
        settings=server_settings(args),
    )  # fmt: skip
    emit(result, args.json, render)
    return 0


def round_order(rnd: int) -> tuple[str, ...]:
    """Each round starts with a different method (round 0 with `copy`, which makes the data)."""
    base = ("copy", "server_copy", "executemany", "seed_insert", "copy_latest_per_batch")
    return base[rnd % 5 :] + base[: rnd % 5]


def run(
    url: str | None,
    rows: int,
    units: int,
    seed_rows: int,
    rounds: int = 3,
    *,
    settings: Sequence[Setting] = (),
) -> Result:
    ticks = math.ceil(rows / units)
    total = ticks * units
    seed_rows = min(seed_rows, total)
    notes: list[str] = []
    seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    stored: dict[str, int | None] = dict.fromkeys(METHODS)
    with bench_database(url, SCHEMA, settings=settings) as db, connect(db.url, autocommit=True) as conn:
        info = machine(conn)
        data: list[Row] = []
        server_file: str | None = None
        try:
            for rnd in range(rounds):
                for method in round_order(rnd):
                    fresh(conn)
                    if method == "copy":
                        spent, stored["copy"] = simulator_copy(db, units, ticks, rnd)
                        seconds["copy"].append(spent)
                        check_count(conn, total, "copy")
                        if rnd == 0:
                            data = fetch_rows(conn)
                            server_file = write_server_file(conn, notes)
                    elif method == "copy_latest_per_batch":
                        spent, stored[method] = simulator_copy(db, units, ticks, rnd, latest_interval=0.0)
                        seconds[method].append(spent)
                        check_count(conn, total, method)
                    elif method == "server_copy":
                        if server_file is None:
                            continue
                        seconds[method].append(timed(server_copy, conn, server_file))
                        stored[method] = check_count(conn, total, method)
                    elif method == "executemany":
                        seconds[method].append(timed(executemany, db.url, data))
                        stored[method] = check_count(conn, total, method)
                    else:
                        seconds[method].append(timed(seed_insert, db.url, data[:seed_rows]))
                        stored[method] = check_count(conn, seed_rows, method)
                log.info("round %d of %d done", rnd + 1, rounds)
        finally:
            if server_file is not None:
                remove_server_file(conn, server_file, db)
        database = db.describe()
    if seed_rows < total:
        notes.append(
            f"seed_insert was measured on the first {seed_rows:,} of the {total:,} rows"
            " (one commit per row takes too long for all of them)"
        )
    notes.append(
        "copy includes generating the rows (C-MAPSS FD001 replay); the other methods are given the same"
        " rows already in memory (server_copy: already in a server-side binary COPY file)"
    )
    notes.append(
        "copy keeps telemetry_latest with the default latestInterval (1 s, its own connection);"
        " copy_latest_per_batch upserts it in every batch's transaction (latestInterval 0s); both are"
        " checked to leave it equal to the newest row per unit"
    )
    if rounds > 1:
        notes.append(
            f"each figure is the median of {rounds} rounds; every round runs all methods, each starting"
            " from an empty table, in a rotated order"
        )
    return summarise(seconds, stored, total, units, ticks, notes, database, info)


def summarise(
    seconds: dict[str, list[float]],
    stored: dict[str, int | None],
    total: int,
    units: int,
    ticks: int,
    notes: list[str],
    database: str,
    info: Result,
) -> Result:
    """The JSON result: rates, ratios measured in this run, targets. Pure, so tests can check it."""
    per_round: dict[str, list[float]] = {
        m: [round(rate(n, s)) for s in seconds[m]] if (n := stored[m]) is not None else [] for m in METHODS
    }
    per_s: dict[str, float | None] = {
        m: round(statistics.median(r)) if r else None for m, r in per_round.items()
    }
    vs_seed = ratio(per_s["copy"], per_s["seed_insert"])
    vs_server = ratio(per_s["copy"], per_s["server_copy"])
    return {
        "benchmark": "ingest",
        "database": database,
        "line": LINE,
        "units": units,
        "ticks": ticks,
        "rows_per_s": per_s,
        "ratios": {
            "copy_vs_seed_insert": round(vs_seed, 2) if vs_seed is not None else None,
            "copy_vs_server_copy": round(vs_server, 3) if vs_server is not None else None,
            "copy_vs_executemany": _round(ratio(per_s["copy"], per_s["executemany"])),
            "copy_vs_copy_latest_per_batch": _round(ratio(per_s["copy"], per_s["copy_latest_per_batch"])),
            "executemany_vs_seed_insert": _round(ratio(per_s["executemany"], per_s["seed_insert"])),
        },
        "targets": {
            "copy_vs_seed_insert_min": TARGET_VS_SEED,
            "copy_vs_seed_insert_met": vs_seed is not None and vs_seed >= TARGET_VS_SEED,
            "copy_vs_server_copy_min": TARGET_VS_SERVER,
            "copy_vs_server_copy_met": vs_server is not None and vs_server >= TARGET_VS_SERVER,
        },
        "rows": stored,
        "seconds": {m: round(statistics.median(s), 3) if s else None for m, s in seconds.items()},
        "rounds": len(seconds["copy"]),
        "rows_per_s_by_round": per_round,
        "notes": notes,
        "machine": info,
    }


def _round(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


# ------------------------------------------------------------------ the methods


def simulator_copy(
    db: BenchDatabase, units: int, ticks: int, rnd: int = 0, latest_interval: float | None = None
) -> tuple[float, int]:
    """The simulator's own backfill: its threads, its batches, its COPY; `telemetry_latest` checked after."""
    from workloads.simulator.config import SimulatorConfig
    from workloads.simulator.runner import Simulator

    config = SimulatorConfig(
        line=LINE,
        units=units,
        rate_hz=1.0,
        pace=False,
        ticks=ticks,
        metrics_port=0,
        spool=db.workdir / f"spool-{rnd}",
    )
    if latest_interval is not None:
        config = config.with_(latest_interval=latest_interval)
    stats = Simulator(config, db.url).run()
    if stats.written != units * ticks or stats.spooled:
        raise DynolineError(
            f"the simulator wrote {stats.written} of {units * ticks} rows ({stats.spooled} spooled):"
            " the database misbehaved during the benchmark"
        )
    with connect(db.url) as conn:
        behind = one(conn, int, _LATEST_BEHIND, (LINE, LINE))
    if behind:
        raise DynolineError(
            f"after the simulator's run, telemetry_latest disagrees with telemetry for {behind} units"
        )
    return stats.elapsed_s, stats.written


def fetch_rows(conn: Conn) -> list[Row]:
    """What `copy` stored, in generation order: the same data for every other method."""
    with conn.cursor(binary=True) as cur:
        cur.execute(_SELECT_LINE)
        return cur.fetchall()


def seed_insert(url: str, rows: Sequence[Row]) -> None:
    with connect(url) as conn:
        for row in rows:
            conn.execute(_INSERT, row)
            conn.commit()


def executemany(url: str, rows: Sequence[Row]) -> None:
    with connect(url) as conn:
        with conn.cursor() as cur:
            cur.executemany(_INSERT, rows)
        conn.commit()


def server_copy(conn: Conn, path: str) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("COPY telemetry ({}) FROM {} (FORMAT BINARY)").format(_COLS, sql.Literal(path)))


def write_server_file(conn: Conn, notes: list[str]) -> str | None:
    """Have the server write the stored rows to a binary COPY file in its data directory.

    Written by the server itself, the file is readable by it wherever it runs (the embedded server
    runs as its own OS user when we are root). Needs superuser or pg_write_server_files.
    """
    try:
        row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        path = str(PurePosixPath(str(row[0])) / f"dynoline_bench_{LINE}.copy")
        conn.execute(sql.SQL("COPY ({}) TO {} (FORMAT BINARY)").format(_SELECT_LINE, sql.Literal(path)))
    except psycopg.Error as exc:
        notes.append(f"server_copy skipped: the server cannot write a COPY file here ({first_line(exc)})")
        return None
    return path


def remove_server_file(conn: Conn, path: str, db: BenchDatabase) -> None:
    if db.embedded is not None:
        return  # the whole data directory goes with the throwaway server
    try:
        conn.execute(
            sql.SQL("COPY (SELECT 1 WHERE false) TO PROGRAM {}").format(
                sql.Literal(f"rm -f {shlex.quote(path)}")
            )
        )
    except psycopg.Error as exc:
        log.warning("could not remove %s on the server: %s", path, first_line(exc))


def fresh(conn: Conn) -> None:
    """An empty table, and no dirty pages left for the next method to flush."""
    conn.execute("TRUNCATE telemetry, telemetry_latest")
    try:
        conn.execute("CHECKPOINT")
    except psycopg.Error as exc:  # needs pg_checkpoint; the comparison stays valid without it
        log.info("CHECKPOINT not allowed (%s): methods may pay for each other's dirty pages", first_line(exc))


def check_count(conn: Conn, expected: int, method: str) -> int:
    found = one(conn, int, "SELECT count(*) FROM telemetry WHERE line = %s", (LINE,)) or 0
    if found != expected:
        raise DynolineError(f"{method} stored {found} rows, expected {expected}")
    return found


def timed(fn: Callable[..., object], *args: Any) -> float:
    began = time.perf_counter()
    fn(*args)
    return time.perf_counter() - began


# ------------------------------------------------------------------ output


def render(r: Result) -> str:
    per_s, n, s = r["rows_per_s"], r["rows"], r["seconds"]
    seed, server = per_s["seed_insert"], per_s["server_copy"]
    by_round = r["rows_per_s_by_round"]
    rows = [
        [
            m,
            n[m],
            s[m],
            per_s[m],
            ratio(per_s[m], seed),
            _pct(ratio(per_s[m], server)),
            " ".join(f"{v:,.0f}" for v in by_round[m]),
        ]
        for m in METHODS
    ]
    t = r["targets"]
    lines = [
        f"dynoline bench ingest: {r['units']:,} units x {r['ticks']:,} ticks into {r['database']}",
        "",
        table(
            ["method", "rows", "seconds", "rows/s", "x seed_insert", "% of server_copy", "rows/s by round"],
            rows,
        ),
        "",
        f"copy vs seed_insert: {r['ratios']['copy_vs_seed_insert']}x"
        f" (target ≥ {t['copy_vs_seed_insert_min']:g}x: {_met(t['copy_vs_seed_insert_met'])})",
        f"copy vs server_copy: {_pct(r['ratios']['copy_vs_server_copy'])} (target ≥"
        f" {t['copy_vs_server_copy_min']:.0%}: {_met(t['copy_vs_server_copy_met'])})",
        *(f"note: {note}" for note in r["notes"]),
        *machine_lines(r["machine"]),
    ]
    return "\n".join(lines)


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{x:.0%}"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
