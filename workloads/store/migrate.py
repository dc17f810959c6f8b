"""Versioned, idempotent schema migrations: plain SQL files applied in order, each in its own transaction.

Several migration Jobs (one per line) may share a database, so the run holds an advisory lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from workloads.errors import DynolineError
from workloads.store.connection import connect
from workloads.store.dsn import describe
from workloads.store.rows import one

_LOCK_KEY = 0x64796E6F  # "dyno"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with the package, ordered by version."""
    found = []
    for entry in resources.files("workloads.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def migrate(url: str) -> list[Migration]:
    """Apply what is missing; returns the migrations applied by this call (empty when up to date)."""
    applied: list[Migration] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def current_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The highest applied version, 0 for a database dynoline has never migrated."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    return one(conn, int, "SELECT coalesce(max(version), 0) FROM schema_migrations") or 0


def require_latest(conn: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    """Refuse (one line, naming the fix) a database older than this code's schema."""
    have = current_version(conn)
    need = max(m.version for m in available())
    if have < need:
        raise DynolineError(
            f"database {describe(url)} has schema version {have}, dynoline needs {need}:"
            " run `dynoline db migrate` first"
        )
