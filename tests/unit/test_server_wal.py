"""The WAL summary of a bench run: what each server counter added, per stored row."""

from workloads.bench.server_wal import Counters, render_wal, wal_summary

BEFORE: Counters = {
    "records": 100,
    "full_page_images": 10,
    "bytes": 1_000,
    "buffers_full": 0,
    "checkpoints_timed": 1,
    "checkpoints_requested": 0,
}


def test_the_summary_is_what_the_run_added_per_row() -> None:
    added = {"records": 2_100, "full_page_images": 60, "bytes": 401_000, "buffers_full": 7}
    after: Counters = {**BEFORE, **added, "checkpoints_requested": 2}
    w = wal_summary(BEFORE, after, rows=1_000)
    assert (w["records"], w["full_page_images"], w["bytes"], w["buffers_full"]) == (2_000, 50, 400_000, 7)
    assert (w["checkpoints_timed"], w["checkpoints_requested"]) == (0, 2)
    assert w["bytes_per_row"] == 400.0 and w["full_page_images_per_1000_rows"] == 50.0
    assert "50 full-page images (50.0 per 1,000 rows)" in render_wal(w)


def test_a_server_without_the_views_reports_none_not_zero() -> None:
    missing: Counters = dict.fromkeys(BEFORE)
    w = wal_summary(missing, missing, rows=1_000)
    assert w["bytes"] is None and w["bytes_per_row"] is None and w["checkpoints_timed"] is None
    assert render_wal(w) == "wal: this server has no pg_stat_wal"
    assert wal_summary(BEFORE, BEFORE, rows=0)["bytes_per_row"] is None
