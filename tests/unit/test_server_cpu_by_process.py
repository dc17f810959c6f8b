"""Server CPU per row by kind of process: what a stream's server time is spent in."""

from workloads.bench.stream_report import _by_process, by_process_us_per_row


def test_per_row_by_kind_largest_first_and_idle_kinds_dropped() -> None:
    by_kind = {"walwriter": 0.5, "client backend": 12.0, "checkpointer": 0.0, "autovacuum worker": 1.25}
    got = by_process_us_per_row(by_kind, rows=1_000_000)
    assert got == {"client backend": 12.0, "autovacuum worker": 1.25, "walwriter": 0.5}
    assert list(got) == ["client backend", "autovacuum worker", "walwriter"]


def test_a_remote_server_or_no_rows_is_not_measured() -> None:
    assert by_process_us_per_row(None, rows=1_000) is None
    assert by_process_us_per_row({"client backend": 1.0}, rows=0) is None


def test_the_render_names_each_kind_or_says_why_not() -> None:
    assert _by_process({"client backend": 9.5, "walwriter": 0.4}) == (
        "client backend 9.5, walwriter 0.4 µs per row"
    )
    assert _by_process(None) == "not measured (the server is not on this machine)"
