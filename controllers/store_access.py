"""The operator's access to the telemetry store: what it reads there (and, when asked, deletes).

Status fields that live in PostgreSQL rather than Kubernetes: the units the sentinel has quarantined
(`unit_state`) and each rule's open alerts (`alerts`). One query per database serves every line and rule
in it and is cached for `ttl` seconds, so 200 lines cost one round trip, not 200. The URL comes from the
line's Secret and is never logged; errors name only host:port/dbname.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg

from workloads.errors import DynolineError
from workloads.store.connection import connect, first_line
from workloads.store.dsn import describe
from workloads.store.rows import every, one

QUARANTINED_SQL = "SELECT line, unit_id FROM unit_state WHERE quarantined ORDER BY line, unit_id"
OPEN_ALERTS_SQL = "SELECT rule, line, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY rule, line"
HAS_ALERTS_SQL = "SELECT to_regclass('alerts') IS NOT NULL"
# Deleting a line's rows: telemetry (every partition), its unit state, its alerts and its registration.
PURGE_SQL: tuple[tuple[str, str], ...] = (
    ("telemetry", "DELETE FROM telemetry WHERE line = %s"),
    ("unit_state", "DELETE FROM unit_state WHERE line = %s"),
    ("alerts", "DELETE FROM alerts WHERE line = %s"),
    ("sentinel_watermarks", "DELETE FROM sentinel_watermarks WHERE line = %s"),
    ("sentinel_baselines", "DELETE FROM sentinel_baselines WHERE line = %s"),
    ("lines", "DELETE FROM lines WHERE line = %s"),
)


class StoreError(DynolineError):
    """The store could not be read or written; the message names the database, never the password."""


@dataclass(frozen=True)
class StoreView:
    quarantined: dict[str, list[int]] = field(default_factory=dict)
    open_alerts: dict[tuple[str, str], int] | None = None  # None: no alerts table (sentinel not migrated)

    def quarantined_units(self, line: str) -> list[int]:
        return self.quarantined.get(line, [])

    def open_alerts_for(self, rule: str, line: str) -> int | None:
        if self.open_alerts is None:
            return None
        return self.open_alerts.get((rule, line), 0)


class _LineUnit(NamedTuple):
    line: str
    unit: int


class _OpenAlerts(NamedTuple):
    rule: str
    line: str
    open: int


def read_view(url: str, timeout: float = 5.0) -> StoreView:
    """One connection, two queries, read-only."""
    try:
        with connect(url, autocommit=True, timeout=timeout) as conn:
            conn.read_only = True
            quarantined: dict[str, list[int]] = {}
            for line, unit in every(conn, _LineUnit, QUARANTINED_SQL):
                quarantined.setdefault(line, []).append(unit)
            alerts: dict[tuple[str, str], int] | None = None
            if one(conn, bool, HAS_ALERTS_SQL):
                alerts = {(r, li): n for r, li, n in every(conn, _OpenAlerts, OPEN_ALERTS_SQL)}
            return StoreView(quarantined, alerts)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read database {describe(url)}: {first_line(exc)}") from None
    except DynolineError as exc:
        raise StoreError(str(exc)) from None


def purge_line(url: str, line: str, timeout: float = 5.0) -> dict[str, int]:
    """Delete everything the store keeps for `line`, in one transaction; rows deleted per table."""
    counts: dict[str, int] = {}
    try:
        with connect(url, timeout=timeout) as conn, conn.transaction():
            for table, sql in PURGE_SQL:
                exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
                if exists and exists[0]:
                    counts[table] = conn.execute(sql, (line,)).rowcount
    except psycopg.Error as exc:
        raise StoreError(f"cannot delete line {line!r} from {describe(url)}: {first_line(exc)}") from None
    except DynolineError as exc:
        raise StoreError(str(exc)) from None
    return counts


class Store:
    """Per-database cached views; concurrent callers for one database share one query."""

    def __init__(
        self,
        ttl: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._clock = clock
        self._views: dict[str, tuple[float, StoreView | str]] = {}  # a str is the last error
        self._locks: dict[str, asyncio.Lock] = {}

    async def view(self, url: str) -> StoreView:
        """The cached view of `url`, refreshed when older than `ttl`; raises StoreError (also cached)."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._views.get(url)
            if cached is None or self._clock() - cached[0] >= self.ttl:
                result: StoreView | str
                try:
                    result = await asyncio.to_thread(read_view, url, self.timeout)
                except StoreError as exc:
                    result = str(exc)
                cached = (self._clock(), result)
                self._views[url] = cached
        if isinstance(cached[1], str):
            raise StoreError(cached[1])
        return cached[1]

    def invalidate(self, url: str | None = None) -> None:
        if url is None:
            self._views.clear()
        else:
            self._views.pop(url, None)

    async def purge(self, url: str, line: str) -> dict[str, int]:
        counts = await asyncio.to_thread(purge_line, url, line, self.timeout)
        self.invalidate(url)
        return counts
