"""The benchmark commands post through the real code path and report their figures."""

from __future__ import annotations

from stockledger.service.bench import bench_backdate, bench_post, raw_sqlite_reference


def test_bench_post_posts_a_full_mix_stream_and_reconciles(tmp_path) -> None:
    result = bench_post(3000, str(tmp_path / "bench.db"), mix="full")
    assert result["events"] == 3000
    # every generated event is accounted for: posted, or a planted bad event
    assert result["posted"] + result["exceptions"] + result["duplicates"] == 3000
    assert result["posted"] > 2900
    assert result["reconcile"] == "balanced"
    assert result["backend"] == "sqlite"
    assert result["events_per_s"] > 0 and result["raw_sqlite_events_per_s"] > 0
    # a run shorter than a stretch still reports that one (last) stretch
    assert len(result["per_100k_events_per_s"]) == 1
    assert len(result["per_100k_posting_cpu_us_per_event"]) == 1
    assert result["per_100k_posting_cpu_us_per_event"][0] > 0


def test_bench_backdate_recosts_every_later_shipment() -> None:
    result = bench_backdate(200)
    # 100 receipts and 100 shipments; the receipt backdated before all of them
    # changes the FIFO cost of the shipments that its units now feed
    assert result["history"] == 200
    assert result["recost_entries"] > 0
    assert result["reconcile"] == "balanced"


def test_raw_reference_measures_something() -> None:
    assert raw_sqlite_reference(2000) > 0
