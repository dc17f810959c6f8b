"""The demo's view: a view model built from what the run knows (pure), rendered as plain lines once a
second when the output is not a terminal, or as a `rich` Live display when it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workloads.api.common import seconds
from workloads.api.line import Fault
from workloads.api.rule import SEVERITIES

from .sentinel import SentinelStatus
from .snapshot import AlertRow, QuarantinedUnit, Snapshot

if TYPE_CHECKING:
    from rich.console import RenderableType

    from workloads.simulator.runner import Progress

MAX_LISTED = 8


@dataclass(frozen=True)
class View:
    line: str
    units: int
    rate_hz: float
    progress: Progress
    rate: float  # samples/s stored since the previous view
    stored: int
    rules: int
    interval_s: float
    sentinel: SentinelStatus
    snapshot: Snapshot | None  # None while the database cannot be read
    fault: Fault | None


def rate_between(then: tuple[float, int], now: tuple[float, int]) -> float:
    """Samples per second between two (elapsed_s, written) readings; 0 for no elapsed time."""
    (t0, w0), (t1, w1) = then, now
    return (w1 - w0) / (t1 - t0) if t1 > t0 else 0.0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def _clock(ts: datetime | None) -> str:
    return "-" if ts is None else ts.strftime("%H:%M:%S")


def bound_text(evidence: dict[str, Any]) -> str:
    """The firing bound of the alert's rule, from its evidence: `> 15`, or `> 3` (z-score) for drift."""
    cond = evidence.get("condition") or {}
    if "threshold" in cond:
        return f"> {cond['threshold']:g}"
    if "op" in cond and "value" in cond:
        return f"{cond['op']} {cond['value']:g}"
    return "?"


def alert_text(a: AlertRow) -> str:
    """One alert, with its evidence, on one line."""
    what = (
        f"{a.statistic} reached {a.worst:.4g} (fires {bound_text(a.evidence)})"
        f" from {_clock(a.first_sample_ts)}"
    )
    action = ", action quarantine" if a.action == "quarantine" else ""
    description = a.evidence.get("description")
    tail = f" ({description})" if description else ""
    state = "" if a.open else " [resolved]"
    return f"{a.severity} {a.rule} unit {a.unit_id}: {what}{action}{state}{tail}"


def _units(units: Iterable[int]) -> str:
    ids = list(units)
    if not ids:
        return "none"
    shown = ", ".join(str(u) for u in ids[:MAX_LISTED])
    return shown + (f" +{len(ids) - MAX_LISTED}" if len(ids) > MAX_LISTED else "")


def fault_text(fault: Fault | None, elapsed_s: float) -> str:
    if fault is None:
        return "none injected (--no-faults)"
    at = seconds(fault.start_after)
    when = f"starts in {at - elapsed_s:.0f} s" if elapsed_s < at else f"running for {elapsed_s - at:.0f} s"
    return (
        f"unit {fault.unit}: thermal runaway (T50, T30 +{fault.ramp_per_minute:g} °R/min)"
        f" from {at:g} s, {when}"
    )


def stream_line(v: View) -> str:
    """The once-a-second plain line: stream figures, open alerts, quarantined units."""
    p = v.progress
    head = (
        f"{p.elapsed_s:6.0f}s  {v.rate:8.1f} samples/s  lag p50 {_ms(p.lag_p50_s)} p99 {_ms(p.lag_p99_s)}"
        f"  stored {v.stored:,} rows  spool {p.spool_rows:,}  db {'up' if p.database_up else 'DOWN'}"
    )
    if v.snapshot is None:
        return head + "  alerts ?  quarantined ?"
    sev = v.snapshot.open_by_severity
    alerts = " ".join(f"{sev[s]} {s}" for s in SEVERITIES)
    return f"{head}  alerts {alerts}  quarantined {_units(q.unit_id for q in v.snapshot.quarantined)}"


@dataclass
class Seen:
    """Which units the output has already told are quarantined (None: nothing read yet)."""

    quarantined: frozenset[int] | None = None


def events(snapshot: Snapshot, seen: Seen, elapsed_s: float) -> list[str]:
    """Lines for alerts opened and units quarantined or released since the previous snapshot."""
    out = [f"{elapsed_s:6.0f}s  ALERT {alert_text(a)}" for a in snapshot.fresh]
    now = frozenset(q.unit_id for q in snapshot.quarantined)
    if seen.quarantined is None:  # the first read: units stopped before this run are not news
        if now:
            out.append(f"{elapsed_s:6.0f}s  already quarantined before this run: units {_units(sorted(now))}")
        seen.quarantined = now
        return out
    for q in snapshot.quarantined:
        if q.unit_id not in seen.quarantined:
            out.append(f"{elapsed_s:6.0f}s  QUARANTINED unit {q.unit_id} by {q.by or '?'}: its rows stop")
    for unit in sorted(seen.quarantined - now):
        out.append(f"{elapsed_s:6.0f}s  RELEASED unit {unit}: it streams again")
    seen.quarantined = now
    return out


def _quarantine_row(q: QuarantinedUnit) -> tuple[str, str, str, str]:
    silent = "-" if q.silent_s is None else f"{q.silent_s:.0f} s"
    return (str(q.unit_id), q.by or "-", _clock(q.at), silent)


def render(v: View) -> RenderableType:
    """The terminal view: stream and sentinel figures, open alerts, newest alerts, quarantined units."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    p = v.progress
    status = Table.grid(padding=(0, 2))
    status.add_column(style="bold")
    status.add_column()
    status.add_row(
        "stream",
        f"{v.rate:,.0f} samples/s   lag p50 {_ms(p.lag_p50_s)} p99 {_ms(p.lag_p99_s)}   stored {v.stored:,}"
        f" rows   spool {p.spool_rows:,}   db " + ("up" if p.database_up else "[red]DOWN[/]"),
    )
    s = v.sentinel
    last = "-" if s.last_pass_s is None else f"{s.last_pass_s * 1000:.0f} ms"
    failing = f"   [red]last pass failed: {s.last_error}[/]" if s.last_error else ""
    status.add_row(
        "sentinel", f"{v.rules} rules every {v.interval_s:g} s   {s.passes} passes, last took {last}{failing}"
    )
    status.add_row("fault", fault_text(v.fault, p.elapsed_s))
    snap = v.snapshot
    if snap is None:
        status.add_row("alerts", "[red]database unreadable[/]")
    else:
        colours = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
        status.add_row(
            "open alerts",
            Text("   ").join(
                Text(f"{snap.open_by_severity[x]} {x}", style=colours[x] if snap.open_by_severity[x] else "")
                for x in SEVERITIES
            ),
        )
    title = f"dynoline demo · line {v.line} · {v.units} units at {v.rate_hz:g} Hz · {p.elapsed_s:.0f} s"
    panel = Panel(status, title=title, title_align="left", subtitle="Ctrl-C stops", subtitle_align="right")
    parts: list[RenderableType] = [panel]
    if snap is not None:
        if snap.newest:
            newest = snap.newest[0]
            evidence = Table.grid(padding=(0, 2))
            evidence.add_column(style="bold")
            evidence.add_column()
            evidence.add_row("rule", f"{newest.rule} ({newest.severity}, action {newest.action})")
            evidence.add_row("unit", str(newest.unit_id))
            evidence.add_row(
                "evidence",
                f"{newest.statistic} reached {newest.worst:.4g}, fires {bound_text(newest.evidence)};"
                f" first at {_clock(newest.first_sample_ts)}",
            )
            if newest.evidence.get("description"):
                evidence.add_row("why", str(newest.evidence["description"]))
            older = [alert_text(a) for a in snap.newest[1:]]
            body: list[RenderableType] = [evidence, *(Text(f"earlier: {t}", style="dim") for t in older)]
            parts.append(Panel(Group(*body), title="newest alert", title_align="left"))
        else:
            parts.append(Panel(Text("none yet", style="dim"), title="newest alert", title_align="left"))
        table = Table(title=None, expand=False, show_edge=False)
        for header in ("unit", "stopped by", "at", "no rows for"):
            table.add_column(header)
        for q in snap.quarantined[: MAX_LISTED * 2]:
            table.add_row(*_quarantine_row(q))
        more = len(snap.quarantined) - MAX_LISTED * 2
        content: RenderableType = table if snap.quarantined else Text("none", style="dim")
        if more > 0:
            content = Group(table, Text(f"and {more} more", style="dim"))
        parts.append(Panel(content, title="quarantined units", title_align="left"))
    return Group(*parts)
