"""`dynoline db …`: schema migrations and retention, as the per-line migration Job runs them."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from workloads.api.common import seconds
from workloads.errors import DynolineError
from workloads.store import dsn
from workloads.store.connection import connect
from workloads.store.migrate import available, current_version, migrate
from workloads.store.partitions import drop_expired, ensure_partitions


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=None, help=f"PostgreSQL URL (default: ${dsn.ENV_VAR})", metavar="URL"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="schema migrations and retention")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    p = db_sub.add_parser("migrate", help="apply pending schema migrations (idempotent)")
    add_database_argument(p)
    p.add_argument("--days-ahead", type=int, default=2, help="daily telemetry partitions to create ahead")
    p.set_defaults(handler=_migrate)

    p = db_sub.add_parser("status", help="schema version and partitions")
    add_database_argument(p)
    p.set_defaults(handler=_status)

    p = db_sub.add_parser("retention", help="drop telemetry partitions older than the retention")
    add_database_argument(p)
    p.add_argument("--keep", default="7d", help="minimum age to keep, e.g. 7d (longest of any line wins)")
    p.set_defaults(handler=_retention)


def _migrate(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    if args.days_ahead < 0 or args.days_ahead > 366:
        raise DynolineError(f"--days-ahead must be between 0 and 366, got {args.days_ahead}")
    applied = migrate(url)
    now = datetime.now(UTC)
    with connect(url) as conn:
        made = ensure_partitions(conn, now - timedelta(days=1), now + timedelta(days=args.days_ahead))
        conn.commit()
        version = current_version(conn)
    print(
        json.dumps(
            {
                "applied": [f"{m.version:04d}_{m.name}" for m in applied],
                "version": version,
                "partitions_created": made,
            }
        )
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    with connect(url) as conn:
        version = current_version(conn)
        parts = (
            [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = to_regclass('telemetry') ORDER BY 1"
                )
            ]
            if version
            else []
        )
    latest = max(m.version for m in available())
    print(
        json.dumps({"version": version, "latest": latest, "pending": latest - version, "partitions": parts})
    )
    return 0


def _retention(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    try:
        keep = timedelta(seconds=seconds(args.keep))
    except ValueError as exc:
        raise DynolineError(f"--keep: {exc}") from None
    with connect(url) as conn:
        dropped = drop_expired(conn, keep)
        conn.commit()
    print(json.dumps({"dropped": dropped}))
    return 0
