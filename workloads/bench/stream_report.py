"""What `dynoline bench stream` concludes from a run: the backlog's trends, the shards combined, targets.

Pure functions of what the run recorded, so the verdicts (throughput against the offer, backlog
growth, lag, memory) are tested on the shapes of real runs without streaming anything.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Any

from .harness import Result, machine_lines, ratio, table
from .server_wal import render_wal
from .stream_probes import LINE

TARGET_LAG_P99_MS = 100.0  # up to LARGE_UNITS units
TARGET_LAG_P99_LARGE_MS = 250.0  # beyond: the 100,000-unit target of issue 11
LARGE_UNITS = 10_000
TARGET_WRITTEN_VS_OFFERED = 0.99
TARGET_RSS_MIB = 1024.0


BacklogSample = tuple[float, int, int, int, int]


@dataclass
class Backlog:
    """Once a second: (elapsed s, generated - written, queue rows, spool rows, offered so far - written).

    The last column is what a throttled generator hides from the second: rows the schedule offered
    by then that are not written yet, whether they were generated late or not at all.
    """

    samples: list[BacklogSample] = field(default_factory=list)

    def summary(self, rows_per_s: float) -> Result:
        backlog = [b for _, b, _, _, _ in self.samples]
        behind = [o for _, _, _, _, o in self.samples]
        slope = slope_per_s([(t, b) for t, b, _, _, _ in self.samples])
        behind_slope = slope_per_s([(t, o) for t, _, _, _, o in self.samples])
        span = self.samples[-1][0] - self.samples[0][0] if len(self.samples) > 1 else 0.0
        growth = slope * span if slope is not None else 0.0
        behind_growth = behind_slope * span if behind_slope is not None else 0.0
        return {
            "samples": [[round(t, 2), b, q, s, o] for t, b, q, s, o in self.samples],
            "sample_columns": [
                "elapsed_s",
                "generated_minus_written",
                "queue_rows",
                "spool_rows",
                "offered_minus_written",
            ],
            "max_rows": max(backlog, default=0),
            "mean_rows": round(statistics.fmean(backlog), 1) if backlog else 0,
            "slope_rows_per_s": round(slope, 2) if slope is not None else None,
            "growth_over_run_rows": round(growth),
            "behind_offered_max_rows": max(behind, default=0),
            "behind_offered_slope_rows_per_s": round(behind_slope, 2) if behind_slope is not None else None,
            "behind_offered_growth_rows": round(behind_growth),
            # growing means: either trend added more than one second of production over the run
            "grew": growth > rows_per_s
            or behind_growth > rows_per_s
            or any(s for _, _, _, s, _ in self.samples),
        }


def slope_per_s(points: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of backlog over time; None with fewer than two distinct times."""
    if len({t for t, _ in points}) < 2:
        return None
    return statistics.linear_regression([t for t, _ in points], [float(b) for _, b in points]).slope


def lag_target_ms(units: int) -> float:
    return TARGET_LAG_P99_MS if units <= LARGE_UNITS else TARGET_LAG_P99_LARGE_MS


def combine(shards: list[Result]) -> Result:
    """The run's stats from its shards' `RunStats.as_dict()`: counts added, times and percentiles the max.

    Each shard's p50 and p99 hold for its own rows, so their max bounds the combined percentile from
    above (each shard has at most 1% of its rows above its p99, hence above the max); it is reported as
    that bound, never as the combined figure itself.
    """
    if len(shards) == 1:
        return shards[0]

    def most(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        return max(present) if present else None

    lags = [s["lag"] for s in shards]
    added = ("generated", "written", "spooled", "write_errors", "batches", "queue_high_water", "queue_bound")
    return {
        **{k: sum(s[k] for s in shards) for k in added},
        "elapsed_s": most([s["elapsed_s"] for s in shards]),
        "queue_blocked_s": most([s["queue_blocked_s"] for s in shards]),  # the most blocked shard
        "lag": {
            "count": sum(int(lag.get("count") or 0) for lag in lags),
            "p50_s": most([lag.get("p50_s") for lag in lags]),
            "p99_s": most([lag.get("p99_s") for lag in lags]),
            "max_s": most([lag.get("max_s") for lag in lags]),
            "percentiles": "the largest shard's, an upper bound of the combined percentile",
        },
    }


def summarise(
    *,
    units: int,
    rate_hz: float,
    seconds: float,
    stats: Result,
    stored: int,
    backlog: Backlog,
    reader: Result,
    client_cpu_s: float,
    latest_reader: Result | None = None,
    latest_interval_s: float | None = None,
    server_cpu_s: float | None,
    server_cpu_by_kind_s: dict[str, float] | None = None,
    wall_s: float,
    database: str,
    info: Result,
    memory: Result,
) -> Result:
    offered = units * rate_hz
    elapsed = float(stats["elapsed_s"]) or wall_s
    lag = stats["lag"]
    commit_p99 = _ms(lag.get("p99_s"))
    back = backlog.summary(offered)
    cores = os.cpu_count() or 1
    total_cpu = client_cpu_s + (server_cpu_s or 0.0)
    target_lag = lag_target_ms(units)
    # Judged on the whole run's offer, so a generator throttled by backpressure cannot hide a shortfall.
    offered_rows = round(offered * seconds)
    written_vs_offered = stats["written"] / offered_rows if offered_rows else None
    # ... and on its pace: a writer that falls behind and drains after the end wrote everything, late
    rate_vs_offered = stats["written"] / elapsed / offered if elapsed and offered else None
    kept_up = min(written_vs_offered or 0.0, rate_vs_offered or 0.0)
    blocked = float(stats["queue_blocked_s"])
    peak_rss = memory["peak_rss_mib"]
    targets = {
        "lag_p99_max_ms": target_lag,
        "written_vs_offered_min": TARGET_WRITTEN_VS_OFFERED,
        "rss_max_mib": TARGET_RSS_MIB,
        "throughput_met": kept_up >= TARGET_WRITTEN_VS_OFFERED,
        "commit_lag_p99_met": commit_p99 is not None and commit_p99 <= target_lag,
        "queryable_lag_p99_met": reader.get("p99_ms") is not None and reader["p99_ms"] <= target_lag,
        "no_backlog_growth": not back["grew"],
        "nothing_lost": stats["written"] == stats["generated"] == stored,
        "nothing_spooled": stats["spooled"] == 0 and stats["write_errors"] == 0,
        "rss_met": peak_rss <= TARGET_RSS_MIB,
    }
    targets["sustained"] = all(
        targets[k]
        for k in (
            "throughput_met",
            "commit_lag_p99_met",
            "queryable_lag_p99_met",
            "no_backlog_growth",
            "nothing_lost",
            "nothing_spooled",
            "rss_met",
        )
    )
    return {
        "benchmark": "stream",
        "database": database,
        "line": LINE,
        "units": units,
        "rate_hz": rate_hz,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 2),
        "offered_rows_per_s": offered,
        "offered_rows": offered_rows,
        "generated": stats["generated"],
        "written": stats["written"],
        "stored": stored,
        "written_rows_per_s": round(stats["written"] / elapsed) if elapsed else None,
        "spooled": stats["spooled"],
        "write_errors": stats["write_errors"],
        "batches": stats["batches"],
        "backlog": {
            **back,
            "queue_high_water": stats["queue_high_water"],
            "queue_bound": stats["queue_bound"],
            "queue_blocked_s": blocked,
            "queue_blocked_share": round(blocked / elapsed, 3) if elapsed else None,
        },
        "lag_commit": {
            "what": "commit time - generation ts, every row (the writer's measurement)",
            "count": lag.get("count"),
            "p50_ms": _ms(lag.get("p50_s")),
            "p99_ms": commit_p99,
            "max_ms": _ms(lag.get("max_s")),
        },
        "lag_queryable": {
            "what": "first visible to a separate reader - generation ts, sampled samples",
            **reader,
        },
        "lag_latest": {
            "what": "first seen in telemetry_latest - generation ts, sampled samples (not a target)",
            "latest_interval_s": latest_interval_s,
            **(latest_reader or {}),
        },
        "cpu": {
            "client_s": round(client_cpu_s, 2),
            "server_s": round(server_cpu_s, 2) if server_cpu_s is not None else None,
            "client_cores": round(client_cpu_s / elapsed, 3) if elapsed else None,
            "server_cores": round(server_cpu_s / elapsed, 3)
            if server_cpu_s is not None and elapsed
            else None,
            "share_of_machine": round(total_cpu / (elapsed * cores), 3) if elapsed else None,
            "cpu_us_per_row": round(total_cpu / stats["written"] * 1e6, 1) if stats["written"] else None,
            "client_us_per_row": round(client_cpu_s / stats["written"] * 1e6, 1)
            if stats["written"]
            else None,
            "server_us_per_row": _per_row_us(server_cpu_s, stats["written"]),
            "server_us_per_row_by_process": by_process_us_per_row(server_cpu_by_kind_s, stats["written"]),
        },
        "memory": memory,
        "ratios": {
            "written_vs_offered": _r(written_vs_offered),
            "written_rate_vs_offered_rate": _r(rate_vs_offered),
            "generated_vs_offered": _r(stats["generated"] / offered_rows if offered_rows else None),
            "commit_lag_p99_vs_target": _r(ratio(commit_p99, target_lag)),
            "queryable_lag_p99_vs_target": _r(ratio(reader.get("p99_ms"), target_lag)),
        },
        "targets": targets,
        "machine": info,
    }


def _per_row_us(cpu_s: float | None, rows: int) -> float | None:
    return round(cpu_s / rows * 1e6, 1) if cpu_s is not None and rows else None


def by_process_us_per_row(by_kind: dict[str, float] | None, rows: int) -> dict[str, float] | None:
    """Server CPU per written row by kind of process, largest first (None: the server is not local)."""
    if by_kind is None or not rows:
        return None
    ordered = sorted(by_kind.items(), key=lambda kv: -kv[1])
    return {kind: round(s / rows * 1e6, 2) for kind, s in ordered if s > 0}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def _r(x: float | None) -> float | None:
    return round(x, 3) if x is not None else None


def render(r: Result) -> str:
    lc, lq, b, c, t = r["lag_commit"], r["lag_queryable"], r["backlog"], r["cpu"], r["targets"]
    m = r["memory"]
    rows = [
        ["commit - generation (every row)", lc["count"], lc["p50_ms"], lc["p99_ms"], lc["max_ms"]],
        ["visible to reader - generation", lq["probes"], lq["p50_ms"], lq["p99_ms"], lq["max_ms"]],
    ]
    ll = r.get("lag_latest") or {}
    if ll.get("probes") is not None:
        rows.append(
            [
                f"in telemetry_latest - generation (latestInterval {ll['latest_interval_s']:g} s,"
                f" {ll.get('upserts', 0)} upserts, mean {ll.get('upsert_mean_ms')} ms)",
                ll["probes"],
                ll["p50_ms"],
                ll["p99_ms"],
                ll["max_ms"],
            ]
        )
    lines = [
        f"dynoline bench stream: {r['units']:,} units x {r['rate_hz']:g} Hz for {r['seconds']:g} s"
        f" in {r.get('shards', 1)} shard(s) into {r['database']}",
        f"offered {r['offered_rows_per_s']:,.0f} rows/s ({r['offered_rows']:,} rows); generated"
        f" {r['generated']:,}, written {r['written']:,}, stored {r['stored']:,}"
        f" ({r['written_rows_per_s']:,} rows/s, {r['ratios']['written_vs_offered']} of offered);"
        f" spooled {r['spooled']}, write errors {r['write_errors']}, {r['batches']:,} batches",
        "",
        table(["lag", "samples", "p50 ms", "p99 ms", "max ms"], rows),
        "",
        f"backlog (generated - written): max {b['max_rows']:,} rows, mean {b['mean_rows']},"
        f" trend {b['slope_rows_per_s']} rows/s; behind the offer (offered - written): max"
        f" {b['behind_offered_max_rows']:,} rows, trend {b['behind_offered_slope_rows_per_s']} rows/s;"
        f" queue high water {b['queue_high_water']:,} of {b['queue_bound']:,}; generator blocked on the"
        f" full queue {b['queue_blocked_s']} s ({b['queue_blocked_share']} of the run)",
        f"cpu: client {c['client_s']} s ({c['client_cores']} cores), server {c['server_s']} s"
        f" ({c['server_cores']} cores), {c['cpu_us_per_row']} µs per row (client {c['client_us_per_row']},"
        f" server {c['server_us_per_row']}), {c['share_of_machine']} of the machine;"
        f" simulator RSS peak {m['peak_rss_mib']} MiB",
        f"server cpu by process: {_by_process(c['server_us_per_row_by_process'])}",
        render_wal(r["wal"]),
        f"targets: written ≥ {t['written_vs_offered_min']:g} of offered, at its pace"
        f" ({r['ratios']['written_rate_vs_offered_rate']} of the offered rate): {_met(t['throughput_met'])};"
        f" lag p99 ≤ {t['lag_p99_max_ms']:g} ms: writer {_met(t['commit_lag_p99_met'])},"
        f" reader {_met(t['queryable_lag_p99_met'])}; no backlog growth: {_met(t['no_backlog_growth'])};"
        f" nothing lost: {'yes' if t['nothing_lost'] else 'NO'}; nothing spooled:"
        f" {'yes' if t['nothing_spooled'] else 'NO'}; RSS ≤ {t['rss_max_mib']:g} MiB: {_met(t['rss_met'])}"
        f" => sustained: {'yes' if t['sustained'] else 'NO'}",
        *machine_lines(r["machine"]),
    ]
    return "\n".join(lines)


def _by_process(by_process: dict[str, float] | None) -> str:
    if not by_process:
        return "not measured (the server is not on this machine)"
    return ", ".join(f"{kind} {us:g}" for kind, us in by_process.items()) + " µs per row"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
