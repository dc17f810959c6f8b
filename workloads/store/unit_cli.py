"""`dynoline unit …`: quarantine, release and list a line's units by hand (the sentinel does it by rule)."""

from __future__ import annotations

import argparse
import getpass
import json

from workloads.store import dsn
from workloads.store.cli import add_database_argument
from workloads.store.connection import connect
from workloads.store.unit_state import list_units, quarantine, release


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    unit = subparsers.add_parser("unit", help="quarantine, release and list a line's units")
    sub = unit.add_subparsers(dest="unit_command", metavar="ACTION", required=True)

    p = sub.add_parser("quarantine", help="stop the simulator streaming a unit")
    _common(p)
    p.add_argument("--unit", type=int, required=True, help="unit id")
    p.add_argument("--reason", required=True, help="why, shown to whoever releases it")
    p.set_defaults(handler=_quarantine)

    p = sub.add_parser("release", help="let a quarantined unit stream again")
    _common(p)
    p.add_argument("--unit", type=int, required=True, help="unit id")
    p.set_defaults(handler=_release)

    p = sub.add_parser("list", help="the line's registered units as JSON")
    _common(p)
    p.add_argument("--quarantined", action="store_true", help="only quarantined units")
    p.set_defaults(handler=_list)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--line", required=True, help="line name")
    add_database_argument(p)


def _quarantine(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    with connect(url) as conn:
        changed = quarantine(conn, args.line, args.unit, args.reason, by=f"cli:{getpass.getuser()}")
        conn.commit()
    print(json.dumps({"line": args.line, "unit": args.unit, "quarantined": True, "changed": changed}))
    return 0


def _release(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    with connect(url) as conn:
        changed = release(conn, args.line, args.unit)
        conn.commit()
    print(json.dumps({"line": args.line, "unit": args.unit, "quarantined": False, "changed": changed}))
    return 0


def _list(args: argparse.Namespace) -> int:
    url = dsn.resolve(args.database_url)
    with connect(url) as conn:
        units = list_units(conn, args.line, quarantined_only=args.quarantined)
    print(
        json.dumps(
            [
                {
                    "unit": u.unit_id,
                    "quarantined": u.quarantined,
                    "reason": u.reason,
                    "quarantinedBy": u.quarantined_by,
                    "quarantinedAt": u.quarantined_at.isoformat() if u.quarantined_at else None,
                }
                for u in units
            ]
        )
    )
    return 0
