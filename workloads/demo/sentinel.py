"""The sentinel inside the demo: `sentinel watch`'s loop (one `run_once` of the pack per interval) on a
thread, keeping the latest outcome for the view instead of printing it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from workloads.errors import DynolineError
from workloads.sentinel.rules import LoadedRule
from workloads.sentinel.runner import RunSummary, run_once


@dataclass(frozen=True)
class SentinelStatus:
    passes: int
    failures: int
    last_error: str | None
    last_pass_s: float | None  # seconds the latest successful pass took
    samples_scanned: int  # by all passes so far


class SentinelLoop:
    def __init__(self, url: str, rules: Sequence[LoadedRule], interval_s: float) -> None:
        self.url = url
        self.rules = list(rules)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sentinel", daemon=True)
        self._lock = threading.Lock()
        self._status = SentinelStatus(0, 0, None, None, 0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def status(self) -> SentinelStatus:
        with self._lock:
            return self._status

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.perf_counter()
            try:
                summary = run_once(self.url, self.rules)
            except DynolineError as exc:  # database away: say so and try again next interval
                self._record(None, str(exc), 0.0)
            else:
                self._record(summary, None, time.perf_counter() - started)

    def _record(self, summary: RunSummary | None, error: str | None, took: float) -> None:
        with self._lock:
            s = self._status
            scanned = sum(r.samples for r in summary.lines.values()) if summary is not None else 0
            self._status = SentinelStatus(
                s.passes + (summary is not None),
                s.failures + (summary is None),
                error,
                took if summary is not None else s.last_pass_s,
                s.samples_scanned + scanned,
            )
