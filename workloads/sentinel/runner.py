"""A sentinel run: every line's rules, one pass each, and the open alerts they leave, as a summary.

Errors are never papered over: an unreachable database is `DatabaseUnavailable`, an unmigrated one or a
failing statement a one-line `DynolineError`; no alert is ever made up.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg

from workloads.api.rule import SEVERITIES
from workloads.errors import DatabaseUnavailable, DynolineError
from workloads.sentinel.engine import LineResult, run_line
from workloads.sentinel.rules import LoadedRule
from workloads.store.connection import connect, first_line
from workloads.store.dsn import describe
from workloads.store.migrate import available, current_version
from workloads.store.rows import every

Conn = psycopg.Connection[tuple[object, ...]]
SCHEMA_VERSION = 4  # 0003 alerts/watermarks/baselines, 0004 the BRIN index the scan relies on


@dataclass
class RunSummary:
    lines: dict[str, LineResult]
    open_alerts: dict[tuple[str, str, str], int]  # (rule, line, severity) → open alerts
    duration_seconds: float = 0.0
    rules: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def open_by_severity(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        for (_, _, severity), count in self.open_alerts.items():
            out[severity] += count
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": self.rules,
            "lines": {line: r.summary() for line, r in sorted(self.lines.items())},
            "opened": sum(r.opened for r in self.lines.values()),
            "updated": sum(r.updated for r in self.lines.values()),
            "resolved": sum(r.resolved for r in self.lines.values()),
            "samples_scanned": sum(r.samples for r in self.lines.values()),
            "open_alerts": self.open_by_severity(),
            "open_alerts_by_rule": [
                {"rule": rule, "line": line, "severity": sev, "open": n}
                for (rule, line, sev), n in sorted(self.open_alerts.items())
            ],
            "duration_seconds": round(self.duration_seconds, 4),
        }


def by_line(rules: Sequence[LoadedRule]) -> dict[str, list[LoadedRule]]:
    out: dict[str, list[LoadedRule]] = defaultdict(list)
    for r in rules:
        out[r.rule.line].append(r)
    return dict(out)


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """psycopg failures → one-line user errors naming the database (never a traceback, never fake data)."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"database {describe(url)} failed during the pass: {first_line(exc)}"
        ) from None
    except psycopg.Error as exc:
        raise DynolineError(f"database {describe(url)}: {first_line(exc)}") from None


def check_schema(conn: Conn, url: str) -> None:
    version = current_version(conn)
    if version < SCHEMA_VERSION:
        latest = max(m.version for m in available())
        raise DynolineError(
            f"database {describe(url)} is at schema version {version}, the sentinel needs {SCHEMA_VERSION}"
            f" (latest {latest}): run `dynoline db migrate` first"
        )


class OpenCount(NamedTuple):
    rule: str
    line: str
    severity: str
    n: int


def open_alert_counts(conn: Conn, rules: Sequence[LoadedRule]) -> dict[tuple[str, str, str], int]:
    """Open alerts of these rules, zero included, so every rule has its gauge series."""
    counts: dict[tuple[str, str, str], int] = {(r.rule.name, r.rule.line, r.rule.severity): 0 for r in rules}
    for rule, line, severity, n in every(
        conn,
        OpenCount,
        "SELECT a.rule, a.line, a.severity, count(*) FROM alerts a"
        " JOIN unnest(%s::text[], %s::text[]) AS k(rule, line) ON a.rule = k.rule AND a.line = k.line"
        " WHERE a.resolved_at IS NULL GROUP BY 1, 2, 3",
        ([r.rule.name for r in rules], [r.rule.line for r in rules]),
    ):
        counts[(rule, line, severity)] = n
    return counts


def run_once(
    url: str,
    rules: Sequence[LoadedRule],
    *,
    until: datetime | None = None,
    grace: timedelta = timedelta(seconds=5),
    backfill: timedelta | None = timedelta(minutes=10),
) -> RunSummary:
    started = time.perf_counter()
    results: dict[str, LineResult] = {}
    with connect(url) as conn, database_errors(url):
        check_schema(conn, url)
        conn.commit()
        for line, group in sorted(by_line(rules).items()):
            results[line] = run_line(conn, line, group, until=until, grace=grace, backfill=backfill)
        counts = open_alert_counts(conn, rules)
        conn.commit()
    return RunSummary(results, counts, time.perf_counter() - started, len(rules))


def fails(summary: RunSummary, fail_on: str | None) -> bool:
    """True when an open alert is at or above `fail_on` severity."""
    if fail_on is None:
        return False
    worst_allowed = [str(s) for s in SEVERITIES].index(fail_on)
    by_sev = summary.open_by_severity()
    return any(by_sev[s] > 0 for s in SEVERITIES[: worst_allowed + 1])
