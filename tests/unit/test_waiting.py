"""The tests' one poller: what it returns, what it tolerates, what a timeout says."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for


def test_returns_the_first_truthy_result() -> None:
    results = iter([0, None, "", 7, 8])
    assert wait_for("a number", lambda: next(results), interval=0) == 7


def test_errors_named_in_retry_on_mean_not_yet() -> None:
    attempts: list[int] = []

    def probe() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise LookupError("not there yet")
        return "there"

    assert wait_for("it to appear", probe, interval=0, retry_on=(LookupError,)) == "there"
    with pytest.raises(ZeroDivisionError):  # anything else is a failure at once
        wait_for("a quotient", lambda: 1 // 0, interval=0, retry_on=(LookupError,))


def gone() -> int:
    raise LookupError("gone")


def test_a_timeout_names_what_was_awaited_and_the_last_thing_seen() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"waiting for the moon; last seen: 0$"):
        wait_for("the moon", lambda: 0, timeout=0, interval=0)
    with pytest.raises(pytest.fail.Exception, match=r"last seen: LookupError\('gone'\)$"):
        wait_for("it", gone, timeout=0, interval=0, retry_on=(LookupError,))
    with pytest.raises(pytest.fail.Exception, match=r"last seen: 'three rows'$"):
        wait_for("four rows", lambda: False, timeout=0, interval=0, last_seen=lambda: "three rows")
