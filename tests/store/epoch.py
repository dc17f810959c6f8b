"""The one base instant of the time-dependent store tests, moved by a whole number of days per session.

A test that mixes a fixed date with the real clock passes only while the calendar is near that date;
moving the date (up to a year either way, at random) makes it fail on the day it is written instead of
weeks later. The offset is printed in the test header; `DYNOLINE_TEST_EPOCH_OFFSET_DAYS=<days>` replays
a session. Whole days keep each test's time of day (samples that straddle midnight still do).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

ENV_VAR = "DYNOLINE_TEST_EPOCH_OFFSET_DAYS"
RANDOM_DAYS = 366  # the random offset lies in [-RANDOM_DAYS, RANDOM_DAYS]
LIMIT_DAYS = 1000  # what the env var may ask for: the simulator makes partitions up to today from it
NOMINAL = datetime(2026, 3, 1, tzinfo=UTC)  # midnight UTC: tests add their time of day to it


def offset_days(environ: Mapping[str, str] = os.environ) -> int:
    """The session's offset: the env var's whole number of days, else a random one."""
    text = environ.get(ENV_VAR, "").strip()
    if not text:
        return random.randint(-RANDOM_DAYS, RANDOM_DAYS)
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r} is not a whole number of days") from None
    if abs(days) > LIMIT_DAYS:
        raise ValueError(f"{ENV_VAR}={days} is outside -{LIMIT_DAYS}..{LIMIT_DAYS}")
    return days


def _session_offset() -> tuple[int, str | None]:
    try:
        return offset_days(), None
    except ValueError as exc:  # reported by the conftest as a one-line usage error, before any test runs
        return 0, str(exc)


OFFSET_DAYS, PROBLEM = _session_offset()
EPOCH = NOMINAL + timedelta(days=OFFSET_DAYS)


def header() -> str:
    return f"dynoline test epoch: {EPOCH:%Y-%m-%d} (replay with {ENV_VAR}={OFFSET_DAYS})"
