"""The one way tests wait: poll a probe until it gives something, then fail naming what was awaited.

A liveness bound, never a timing assertion: the timeout only ends a test that would otherwise hang, so
it is generous, and nothing is concluded from how long the wait took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    *,
    retry_on: tuple[type[Exception], ...] = (),
    last_seen: Callable[[], object] | None = None,
) -> T:
    """Call `probe` until it returns something truthy, and return that.

    `retry_on`: errors that mean "not yet" (a probe racing a deletion), kept for the failure message.
    `last_seen`: what to report on a timeout instead of the probe's last result.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
        except retry_on as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() > deadline:
            seen = last_seen() if last_seen is not None else last
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last seen: {seen!r}")
        time.sleep(interval)
