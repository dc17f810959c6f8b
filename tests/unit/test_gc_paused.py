"""The product's fetch holds the cyclic collector off while it decodes, and always gives it back."""

import gc
from collections.abc import Iterator

import pytest

from workloads.store.queries import gc_paused


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_enabled_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_gives_the_collector_back() -> None:
    with pytest.raises(RuntimeError, match="decode failed"), gc_paused():
        raise RuntimeError("decode failed")
    assert gc.isenabled()


def test_a_caller_that_disabled_it_keeps_it_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_pauses_enable_only_at_the_outermost_end() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_not_pausing_leaves_it_running() -> None:
    with gc_paused(pause=False):
        assert gc.isenabled()
    assert gc.isenabled()
