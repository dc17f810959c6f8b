"""Reading a query's plan: which index scans ran on telemetry and telemetry_latest, any sequential scan.

`dynoline bench query` proves with it that the product's query never scans telemetry (or its
latest table) sequentially; a scan that was planned but never executed still counts, because on
another day's data it would run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .harness import Conn


@dataclass(frozen=True)
class PlanSummary:
    """One execution inside the server (EXPLAIN ANALYZE, TIMING OFF) and what its plan touched."""

    execution_ms: float
    planning_ms: float
    shared_hit_blocks: int
    shared_read_blocks: int
    temp_written_blocks: int
    index_scans_on_telemetry: dict[str, int]  # "<scan> using <index>": executed loops
    seq_scans_on_telemetry: list[str]
    index_scans_on_latest: dict[str, int]
    seq_scans_on_latest: list[str]
    node_types: dict[str, int]
    outline: list[str]

    @property
    def seq_scan(self) -> bool:
        return bool(self.seq_scans_on_telemetry or self.seq_scans_on_latest)


def explain(conn: Conn, query: sql.Composed, parameters: dict[str, object]) -> PlanSummary:
    """One execution inside the server (EXPLAIN ANALYZE without per-node timing), summarised."""
    row = conn.execute(
        sql.SQL("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {}").format(query), parameters
    ).fetchone()
    assert row is not None
    doc = row[0] if isinstance(row[0], list) else json.loads(str(row[0]))
    return plan_summary(doc[0])


def plan_summary(explained: dict[str, Any]) -> PlanSummary:
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
    return PlanSummary(
        execution_ms=round(float(explained.get("Execution Time", 0.0)), 2),
        planning_ms=round(float(explained.get("Planning Time", 0.0)), 2),
        shared_hit_blocks=int(top.get("Shared Hit Blocks", 0)),
        shared_read_blocks=int(top.get("Shared Read Blocks", 0)),
        temp_written_blocks=int(top.get("Temp Written Blocks", 0)),
        index_scans_on_telemetry=index_scans,
        seq_scans_on_telemetry=sorted(set(seq_scans)),
        index_scans_on_latest=latest_index_scans,
        seq_scans_on_latest=sorted(set(latest_seq_scans)),
        node_types=node_types,
        outline=outline(top),
    )


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
