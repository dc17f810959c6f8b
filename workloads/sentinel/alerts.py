"""Reading alerts back: `dynoline alerts` and the operator's status both want the same rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import sql

from workloads.sentinel.runner import database_errors
from workloads.store.connection import connect

_COLUMNS = (
    "id", "rule", "line", "unit_id", "severity", "kind", "statistic", "action", "first_sample_ts",
    "last_sample_ts", "worst_value", "hits", "resolved_sample_ts", "opened_at", "last_seen_at", "resolved_at",
    "evidence",
)  # fmt: skip


def list_alerts(
    url: str, *, line: str | None = None, rule: str | None = None, open_only: bool = True, limit: int = 200
) -> list[dict[str, Any]]:
    """Newest first; timestamps as ISO 8601 strings so the rows are JSON as they are."""
    with connect(url) as conn, database_errors(url):
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM alerts"
                " WHERE (%(line)s::text IS NULL OR line = %(line)s)"
                " AND (%(rule)s::text IS NULL OR rule = %(rule)s)"
                " AND (NOT %(open)s OR resolved_at IS NULL)"
                " ORDER BY first_sample_ts DESC, id DESC LIMIT %(limit)s"
            ).format(sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)),
            {"line": line, "rule": rule, "open": open_only, "limit": limit},
        ).fetchall()
    out = []
    for row in rows:
        item = dict(zip(_COLUMNS, row, strict=True))
        for key, value in item.items():
            if isinstance(value, datetime):
                item[key] = value.isoformat()
        item["open"] = item["resolved_at"] is None
        out.append(item)
    return out


def rul_text(evidence: object) -> str | None:
    """The "RUL ≈ 24 cycles (18 to 31)" of a rul alert's evidence; None for the other kinds."""
    rul = evidence.get("rul") if isinstance(evidence, dict) else None
    if not isinstance(rul, dict):
        return None
    return f"RUL ≈ {rul['estimate']:.0f} cycles ({rul['low']:.0f}\u2013{rul['high']:.0f})"


def render_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no alerts"
    header = (
        "ID",
        "RULE",
        "LINE",
        "UNIT",
        "SEVERITY",
        "STATISTIC",
        "WORST",
        "FIRST SAMPLE",
        "LAST SAMPLE",
        "STATE",
    )
    body = [
        (
            str(r["id"]), r["rule"], r["line"], str(r["unit_id"]), r["severity"], r["statistic"],
            rul_text(r["evidence"]) or f"{r['worst_value']:.6g}", r["first_sample_ts"], r["last_sample_ts"],
            "open" if r["open"] else f"resolved {r['resolved_sample_ts']}",
        )
        for r in rows
    ]  # fmt: skip
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
