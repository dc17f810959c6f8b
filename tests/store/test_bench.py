"""The benchmark commands at toy scale: the JSON they promise, the row counts they claim, no leftovers.

Speed is not asserted here (benchmarks measure it); these check that each method really stored what
it says, that the query benchmark's plan check sees what the plan did, and that a benchmark pointed at
a real database leaves the product's tables alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.store.epoch import EPOCH
from workloads.bench import query as query_bench
from workloads.bench import stream_report as stream_bench
from workloads.bench.harness import with_search_path
from workloads.bench.latest_baselines import (
    LATEST_PER_UNIT_NAIVE,
    LATEST_PER_UNIT_PROBE,
    LATEST_PER_UNIT_UNHINTED,
    params,
)
from workloads.bench.stream_report import Backlog
from workloads.cli import main
from workloads.store.embedded import EmbeddedPostgres
from workloads.store.partitions import ensure_partitions
from workloads.store.queries import latest_per_unit
from workloads.store.unit_state import quarantine, register_units

MACHINE_KEYS = {"cpu_model", "cores", "memory_gib", "python", "postgresql", "server_settings"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["bench", *argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def public_row(url: str) -> tuple[object, ...]:
    """Put one product row in public.telemetry, to show a benchmark leaves it alone."""
    ts = EPOCH + timedelta(hours=12)
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, ts, ts)
        conn.execute(
            "INSERT INTO telemetry VALUES ('line-a', 7, 1, %s" + ", 1.0" * 24 + ")",
            (ts,),
        )
        conn.commit()
    return ("line-a", 7, ts)


def assert_public_untouched(url: str, row: tuple[object, ...]) -> None:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT line, unit_id, ts FROM public.telemetry").fetchall()
        schemas = {
            r[0]
            for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dynoline_bench%'")
        }
    assert found == [row]
    assert schemas <= {query_bench.SCHEMA}  # only the query benchmark keeps its data for reuse


def test_ingest_reports_every_method_with_the_rows_it_stored(
    capsys: pytest.CaptureFixture[str], database_url: str, pg_server: EmbeddedPostgres
) -> None:
    row = public_row(database_url)
    r = run_json(
        capsys,
        "ingest",
        "--database-url",
        database_url,
        "--rows",
        "3000",
        "--units",
        "30",
        "--seed-insert-rows",
        "40",
        "--rounds",
        "2",
    )
    methods = {"seed_insert", "executemany", "copy", "copy_latest_per_batch", "server_copy"}
    assert set(r["rows_per_s"]) == methods
    assert all(v > 0 for v in r["rows_per_s"].values())
    assert r["rows"] == {
        "seed_insert": 40,
        "executemany": 3000,
        "copy": 3000,
        "copy_latest_per_batch": 3000,
        "server_copy": 3000,
    }
    assert r["ratios"]["copy_vs_copy_latest_per_batch"] == pytest.approx(
        r["rows_per_s"]["copy"] / r["rows_per_s"]["copy_latest_per_batch"], rel=0.01
    )
    assert r["rounds"] == 2
    assert all(len(r["rows_per_s_by_round"][m]) == 2 for m in methods)
    assert set(r["ratios"]) >= {"copy_vs_seed_insert", "copy_vs_server_copy"}
    assert r["ratios"]["copy_vs_seed_insert"] == pytest.approx(
        r["rows_per_s"]["copy"] / r["rows_per_s"]["seed_insert"], rel=0.01
    )
    assert isinstance(r["targets"]["copy_vs_seed_insert_met"], bool)
    assert isinstance(r["targets"]["copy_vs_server_copy_met"], bool)
    assert set(r["machine"]) >= MACHINE_KEYS
    assert any("first 40" in note for note in r["notes"])
    assert_public_untouched(database_url, row)
    leftovers = list(pg_server.datadir.glob("dynoline_bench_*.copy"))
    assert leftovers == []


def test_ingest_rounds_rows_up_to_whole_ticks(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    r = run_json(
        capsys,
        "ingest",
        "--database-url",
        database_url,
        "--rows",
        "95",
        "--units",
        "10",
        "--seed-insert-rows",
        "1000",
        "--rounds",
        "1",
    )
    assert r["ticks"] == 10
    assert r["rows"] == {
        "seed_insert": 100,
        "executemany": 100,
        "copy": 100,
        "copy_latest_per_batch": 100,
        "server_copy": 100,
    }
    assert not any("first" in note for note in r["notes"])  # all rows, so no subset to mention


def test_query_builds_times_and_proves_the_index(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    row = public_row(database_url)
    argv = [
        "query",
        "--database-url",
        database_url,
        "--units",
        "25",
        "--rows",
        "480",
        "--repeat",
        "3",
        "--naive-repeat",
        "1",
        "--lines",
        "3",
    ]
    r = run_json(capsys, *argv)
    assert r["table"]["rows"] == 500  # 20 ticks of 25 units: whole ticks
    assert r["table"]["ticks_per_unit"] == 20
    assert r["table"]["reused"] is False
    latest = r["latest_per_unit"]
    assert latest["rows"] == 25 and latest["runs"] == 3
    assert latest["median_ms"] <= latest["p95_ms"] <= latest["max_ms"]
    # the rows are freed after the round trip's clock stops, timed in the same runs
    assert latest["median_ms"] <= latest["freed_median_ms"]
    assert r["naive_distinct_on"]["rows"] == 25
    assert r["results_match"] is True
    assert r["table"]["lines"] == 3 and r["table"]["latest_rows"] == 75  # every unit of every line
    plan = latest["plan"]
    assert plan["seq_scans_on_telemetry"] == [] and plan["index_scans_on_telemetry"] == {}
    assert r["targets"]["no_seq_scan_on_telemetry"]
    # the product reads telemetry_latest only; at toy size the planner may scan it whole (its choice)
    assert plan["index_scans_on_latest"] or plan["seq_scans_on_latest"] == ["telemetry_latest"]
    hinted = r["baselines"]["hinted_lateral"]["plan"]
    # the previous product query: one probe per unit, plus one per hint unit (the 8 lowest ids)
    assert set(hinted["index_scans_on_telemetry"].values()) == {25, 8}
    assert hinted["seq_scans_on_telemetry"] == []
    assert latest["server_runs"] == 3 and latest["server_median_ms"] <= latest["server_p95_ms"]
    assert set(r["baselines"]) == {
        "latest_per_unit_whole",
        "latest_per_unit_dashboard",
        "hinted_lateral",
        "unhinted_lateral",
        "exact_key_probe",
    }
    assert all(e["rows"] == 25 and e["same_answer_as_product"] for e in r["baselines"].values())
    up = r["latest_table_upkeep"]
    assert up["rows_per_round"] == 25 and up["upsert_median_ms"] > 0
    assert set(r["machine"]) >= MACHINE_KEYS
    # the newest sample of every unit is the last tick's
    with psycopg.connect(with_search_path(database_url, query_bench.SCHEMA)) as conn:
        newest = latest_per_unit(conn, query_bench.LINE)
        last_ts = conn.execute(
            "SELECT last_ts FROM bench_build WHERE line = %s", (query_bench.LINE,)
        ).fetchone()
        other = latest_per_unit(conn, query_bench.other_line(3))
    assert last_ts is not None
    assert [(n[1], n[2], n[3]) for n in newest] == [(u, 20, last_ts[0]) for u in range(25)]
    assert [(n[1], n[2], n[3]) for n in other] == [
        (u, query_bench.OTHER_TICKS, last_ts[0]) for u in range(25)
    ]

    again = run_json(capsys, *argv)
    assert again["table"]["reused"] is True
    assert again["table"]["built_at"] == r["table"]["built_at"]
    assert_public_untouched(database_url, row)


def test_query_rebuilds_when_asked_for_more_rows(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    base = ["query", "--database-url", database_url, "--units", "10", "--repeat", "1", "--naive-repeat", "1"]
    assert run_json(capsys, *base, "--rows", "100")["table"]["rows"] == 100
    bigger = run_json(capsys, *base, "--rows", "300")
    assert bigger["table"]["reused"] is False
    assert bigger["table"]["rows"] == 300
    with psycopg.connect(with_search_path(database_url, query_bench.SCHEMA)) as conn:
        count = conn.execute("SELECT count(*) FROM telemetry WHERE line = %s", (query_bench.LINE,)).fetchone()
        latest = conn.execute("SELECT count(*) FROM telemetry_latest").fetchone()
    assert count == (300,)
    assert latest == (10 * 10,)  # 10 lines (the default) of 10 units, after the rebuild as before


def test_query_on_a_throwaway_embedded_server(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys,
        "query",
        "--units",
        "5",
        "--rows",
        "50",
        "--repeat",
        "1",
        "--naive-repeat",
        "1",
        "--lines",
        "1",
        "--server-setting",
        "shared_buffers=64MB",
        "--server-setting",
        "work_mem=8MB",
    )
    assert r["database"].startswith("throwaway embedded PostgreSQL")
    assert r["table"]["rows"] == 50 and r["latest_per_unit"]["rows"] == 5
    # the server ran with them (the later one wins over the embedded default), and says so
    settings = r["machine"]["server_settings"]
    assert (settings["shared_buffers"], settings["work_mem"]) == ("64MB", "8MB")
    # fixed at initdb, which turns checksums on by default from PostgreSQL 18 (the wheel's is >= 18.6)
    assert settings["data_checksums"] == "on"


def test_stream_writes_everything_it_generates(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    row = public_row(database_url)
    r = run_json(
        capsys, "stream", "--database-url", database_url, "--units", "40", "--rate", "5", "--seconds", "6"
    )
    assert r["generated"] > 0
    assert r["generated"] == r["written"] == r["stored"]
    assert r["spooled"] == 0 and r["write_errors"] == 0
    assert r["targets"]["nothing_lost"] is True
    assert r["lag_commit"]["count"] == r["written"]
    assert r["lag_commit"]["p50_ms"] <= r["lag_commit"]["p99_ms"] <= r["lag_commit"]["max_ms"]
    assert r["lag_queryable"]["error"] is None
    assert r["lag_queryable"]["probes"] >= 1
    assert r["lag_queryable"]["timeouts"] == 0
    assert r["backlog"]["samples"] and r["backlog"]["sample_columns"][1] == "generated_minus_written"
    assert r["cpu"]["client_s"] > 0
    assert r["cpu"]["server_s"] is not None and r["cpu"]["server_s"] > 0  # the server runs on this machine
    # the server's CPU by kind of process adds up to its total, and the writers' backends are in it
    by_process = r["cpu"]["server_us_per_row_by_process"]
    assert by_process["client backend"] > 0
    assert abs(sum(by_process.values()) - r["cpu"]["server_us_per_row"]) <= 0.1 + 0.01 * len(by_process)
    assert isinstance(r["targets"]["no_backlog_growth"], bool)
    assert r["backlog"]["sample_columns"][4] == "offered_minus_written"
    # the schedule's last tick may add a few rows beyond units x rate x seconds
    assert 0 < r["ratios"]["written_vs_offered"] <= 1.05
    assert r["memory"]["peak_rss_mib"] > 0 and r["cpu"]["cpu_us_per_row"] > 0
    # every stored row is WAL-logged (wal_level replica): its 24 channels alone are 192 bytes
    assert r["wal"]["bytes_per_row"] > 192 and r["wal"]["records"] > 0
    assert r["wal"]["checkpoints_timed"] is not None and r["wal"]["checkpoints_timed"] >= 0
    judged = ("throughput_met", "commit_lag_p99_met", "queryable_lag_p99_met", "no_backlog_growth", "rss_met")
    assert r["targets"]["sustained"] == all(r["targets"][k] for k in judged)
    assert_public_untouched(database_url, row)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--rows", "5", "--units", "10"], "--rows 5 must be at least --units 10"),
        (["ingest", "--units", "0"], "--units must be at least 1"),
        (["ingest", "--rounds", "0"], "--rounds must be between 1 and 20"),
        (["query", "--units", "0"], "--units must be between 1 and 100000"),
        (["query", "--units", "10", "--rows", "9"], "--rows 9 must be at least --units 10"),
        (["stream", "--seconds", "0"], "--seconds must be a positive number"),
        (["stream", "--rate", "nan"], "--rate must be a positive number of Hz"),
        (["ingest", "--database-url", "mysql://x/y"], "malformed database URL"),
        (["ingest", "--server-setting", "shared_buffers"], "expected NAME=VALUE"),
        (["stream", "--server-setting", "work_mem=1MB;rm -rf x"], "expected NAME=VALUE"),
        (
            ["sentinel", "--database-url", "postgresql://x/y", "--server-setting", "work_mem=8MB"],
            "--server-setting applies to the throwaway server",
        ),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dynoline: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_unreachable_database_fails_with_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    assert main(["bench", "query", "--database-url", url, "--units", "1", "--rows", "1"]) == 4
    assert "cannot reach database 127.0.0.1:1/nowhere" in capsys.readouterr().err


def test_a_role_that_cannot_create_the_schema_gets_one_line(
    capsys: pytest.CaptureFixture[str], empty_database_url: str
) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN CREATE ROLE bench_nobody LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    url = empty_database_url.replace("postgres@", "bench_nobody@")
    assert main(["bench", "query", "--database-url", url, "--units", "1", "--rows", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dynoline: error: cannot prepare the benchmark schema dynoline_bench_query")
    assert "permission denied" in err and len(err.splitlines()) == 1


def insert(
    conn: psycopg.Connection[tuple[object, ...]], line: str, unit: int, ts: datetime, value: float
) -> None:
    conn.execute(
        "INSERT INTO telemetry VALUES (%s, %s, %s, %s" + ", %s" * 24 + ")",
        (line, unit, int(value), ts, *([value] * 24)),
    )


def test_the_telemetry_probe_returns_the_newest_row_of_each_registered_unit(database_url: str) -> None:
    t0 = EPOCH + timedelta(hours=23, minutes=59, seconds=58)  # samples straddle midnight: two partitions
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, t0 - timedelta(days=3), t0 + timedelta(days=2))
        register_units(conn, "line-a", [1, 2, 3])  # unit 3 has no samples yet
        register_units(conn, "line-b", [1])
        for unit, seconds in [(1, 0), (1, 3), (2, 1), (2, 2)]:
            insert(conn, "line-a", unit, t0 + timedelta(seconds=seconds), float(seconds))
        insert(conn, "line-b", 1, t0 + timedelta(days=1), 9.0)
        conn.commit()
        rows = conn.cursor(binary=True).execute(LATEST_PER_UNIT_PROBE, params("line-a")).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("line-a", 1, 3, t0 + timedelta(seconds=3)),
        ("line-a", 2, 2, t0 + timedelta(seconds=2)),
    ]
    assert len(rows[0]) == 28 and rows[0][4:] == (3.0,) * 24


def test_the_time_hint_never_changes_the_answer(database_url: str) -> None:
    """Units older than the hint, newer than it, quarantined or silent get what the plain probe gives."""
    t0 = EPOCH + timedelta(hours=12)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, t0 - timedelta(days=3), t0 + timedelta(days=2))
        register_units(conn, "line-a", range(1, 14))
        for unit in range(1, 9):  # the hint units: newest sample at t0 + 3 s
            for s in range(4):
                insert(conn, "line-a", unit, t0 + timedelta(seconds=s), float(s))
        insert(conn, "line-a", 9, t0 - timedelta(days=2), 1.0)  # stopped two days ago
        insert(conn, "line-a", 9, t0 - timedelta(days=2, seconds=1), 0.0)
        insert(conn, "line-a", 10, t0 + timedelta(days=1), 5.0)  # stamped a day ahead
        insert(conn, "line-a", 10, t0, 4.0)
        insert(conn, "line-a", 11, t0 - timedelta(seconds=30), 6.0)  # lagging behind the window
        quarantine(conn, "line-a", 12, "overheat", "test")
        insert(conn, "line-a", 12, t0 + timedelta(seconds=2), 7.0)  # quarantined: not a hint unit
        conn.commit()  # unit 13: registered, no samples
        hinted = conn.cursor(binary=True).execute(LATEST_PER_UNIT_PROBE, params("line-a")).fetchall()
        tiny = params("line-a", window=timedelta(microseconds=1))
        tiny_window = conn.cursor(binary=True).execute(LATEST_PER_UNIT_PROBE, tiny).fetchall()
        plain = conn.cursor(binary=True).execute(LATEST_PER_UNIT_UNHINTED, params("line-a")).fetchall()
        naive = conn.cursor(binary=True).execute(LATEST_PER_UNIT_NAIVE, params("line-a")).fetchall()
    assert hinted == plain == tiny_window == naive
    newest = {int(str(r[1])): r[3] for r in hinted}
    assert newest[9] == t0 - timedelta(days=2)
    assert newest[10] == t0 + timedelta(days=1)
    assert newest[11] == t0 - timedelta(seconds=30)
    assert newest[12] == t0 + timedelta(seconds=2)
    assert 13 not in newest and len(newest) == 12


def test_plan_summary_flags_a_sequential_scan_even_when_it_never_ran() -> None:
    plan = {
        "Plan": {
            "Node Type": "Append",
            "Actual Loops": 1,
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "telemetry_p20260301", "Actual Loops": 0},
                {
                    "Node Type": "Index Scan",
                    "Relation Name": "telemetry_p20260302",
                    "Index Name": "telemetry_p20260302_pkey",
                    "Actual Loops": 4,
                },
                {"Node Type": "Seq Scan", "Relation Name": "unit_state", "Actual Loops": 1},
            ],
        },
        "Execution Time": 1.5,
        "Planning Time": 0.2,
    }
    s = query_bench.plan_summary(plan)
    assert s.seq_scans_on_telemetry == ["telemetry_p20260301"]
    assert s.index_scans_on_telemetry == {"Index Scan using telemetry_p20260302_pkey": 4}
    assert s.execution_ms == 1.5 and s.seq_scan
    assert any("never executed" in line for line in s.outline)


def test_backlog_growth_is_judged_against_one_second_of_production() -> None:
    flat = Backlog([(float(t), 500 + (t % 2) * 100, 0, 0, 600) for t in range(60)])
    assert flat.summary(10_000)["grew"] is False
    growing = Backlog([(float(t), 400 * t, 400 * t, 0, 400 * t) for t in range(60)])
    summary = growing.summary(10_000)
    assert summary["grew"] is True and summary["slope_rows_per_s"] == pytest.approx(400)
    spooling = Backlog([(0.0, 0, 0, 0, 0), (1.0, 0, 0, 10, 0)])
    assert spooling.summary(10_000)["grew"] is True


def test_a_writer_that_drains_late_wrote_everything_but_did_not_keep_up() -> None:
    stats = {
        "elapsed_s": 33.0,  # 30 s of offer, 3 s of draining a backlog after the end
        "generated": 300_000,
        "written": 300_000,
        "spooled": 0,
        "write_errors": 0,
        "batches": 1,
        "queue_high_water": 1,
        "queue_bound": 50_000,
        "queue_blocked_s": 0.0,
        "lag": {"count": 1, "p50_s": 0.8, "p99_s": 3.1, "max_s": 3.3},
    }
    r = stream_bench.summarise(
        units=10_000,
        rate_hz=1.0,
        seconds=30.0,
        stats=stats,
        stored=300_000,
        backlog=Backlog([(float(t), 0, 0, 0, 0) for t in range(30)]),
        reader={"p99_ms": 50.0},
        client_cpu_s=1.0,
        server_cpu_s=1.0,
        wall_s=33.0,
        database="x",
        info={},
        memory={"peak_rss_mib": 100.0},
    )
    assert r["ratios"]["written_vs_offered"] == 1.0
    assert r["ratios"]["written_rate_vs_offered_rate"] == pytest.approx(0.909, abs=0.001)
    assert r["targets"]["throughput_met"] is False and r["targets"]["sustained"] is False


def test_a_throttled_generator_cannot_hide_a_shortfall() -> None:
    """Backpressure keeps generated - written flat while the line falls behind its offer (the 100k run)."""
    offered, written_per_s = 100_000, 45_000
    samples = [(float(t), 5_000, 5_000, 0, (offered - written_per_s) * t) for t in range(1, 61)]
    backlog = Backlog(samples)
    assert backlog.summary(offered)["slope_rows_per_s"] == pytest.approx(0)
    assert backlog.summary(offered)["grew"] is True
    stats = {
        "elapsed_s": 60.0,
        "generated": written_per_s * 60,
        "written": written_per_s * 60,
        "spooled": 0,
        "write_errors": 0,
        "batches": 1,
        "queue_high_water": 5_000,
        "queue_bound": 5_000,
        "queue_blocked_s": 51.0,
        "lag": {"count": 1, "p50_s": 1.0, "p99_s": 34.9, "max_s": 40.0},
    }
    r = stream_bench.summarise(
        units=100_000,
        rate_hz=1.0,
        seconds=60.0,
        stats=stats,
        stored=written_per_s * 60,
        backlog=backlog,
        reader={"p99_ms": 100.0},
        client_cpu_s=10.0,
        server_cpu_s=50.0,
        wall_s=60.0,
        database="x",
        info={},
        memory={"peak_rss_mib": 500.0},
    )
    t = r["targets"]
    assert r["ratios"]["written_vs_offered"] == pytest.approx(0.45)
    assert r["ratios"]["written_rate_vs_offered_rate"] == pytest.approx(0.45)
    assert t["nothing_lost"] is True  # every generated row was written ...
    assert t["throughput_met"] is False and t["no_backlog_growth"] is False  # ... yet it did not keep up
    assert t["sustained"] is False and t["lag_p99_max_ms"] == 250.0
    assert r["backlog"]["queue_blocked_share"] == pytest.approx(0.85)
    assert r["cpu"]["cpu_us_per_row"] == pytest.approx(60 / 2_700_000 * 1e6, abs=0.1)


def test_stream_in_two_shards_writes_every_unit_once(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    r = run_json(
        capsys,
        "stream",
        "--database-url",
        database_url,
        "--units",
        "30",
        "--rate",
        "5",
        "--seconds",
        "4",
        "--shards",
        "2",
    )
    assert r["shards"] == 2
    assert r["generated"] > 0 and r["generated"] == r["written"] == r["stored"]
    assert r["lag_commit"]["count"] == r["written"]
    assert r["spooled"] == 0 and r["write_errors"] == 0


def test_shard_stats_combine_counts_and_bound_percentiles_from_above() -> None:
    def shard(written: int, p99: float, blocked: float) -> dict[str, Any]:
        return {
            "elapsed_s": 10.0 + p99,
            "generated": written,
            "written": written,
            "spooled": 0,
            "write_errors": 0,
            "batches": 3,
            "queue_high_water": 5,
            "queue_bound": 50,
            "queue_blocked_s": blocked,
            "lag": {"count": written, "p50_s": p99 / 2, "p99_s": p99, "max_s": p99 * 2},
        }

    both = stream_bench.combine([shard(100, 0.2, 1.0), shard(300, 0.1, 4.0)])
    assert both["written"] == 400 and both["batches"] == 6 and both["queue_bound"] == 100
    assert both["lag"]["count"] == 400 and both["lag"]["p99_s"] == 0.2 and both["lag"]["max_s"] == 0.4
    assert both["queue_blocked_s"] == 4.0 and both["elapsed_s"] == 10.2
    assert stream_bench.combine([shard(7, 0.1, 0.0)])["written"] == 7
