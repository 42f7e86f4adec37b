"""Per-source sequence gaps (SPEC 3: gaps are reported, never fatal)."""

from __future__ import annotations

from stockledger.domain.sequences import GAPS_KEPT_MAX, missing_count, record_seqs


def test_consecutive_seqs_leave_no_gap() -> None:
    assert record_seqs([], None, [1, 2, 3]) == ([], 3)


def test_a_jump_opens_a_gap() -> None:
    # 1, 2, 5 -> 3 and 4 are missing
    assert record_seqs([], None, [1, 2, 5]) == ([(3, 4)], 5)


def test_late_arrivals_close_the_gap_piece_by_piece() -> None:
    gaps, last = record_seqs([], None, [1, 2, 5])
    # 4 arrives: only 3 is missing
    gaps, last = record_seqs(gaps, last, [4])
    assert (gaps, last) == ([(3, 3)], 5)
    # 3 arrives: nothing missing
    assert record_seqs(gaps, last, [3]) == ([], 5)


def test_an_arrival_in_the_middle_splits_a_gap() -> None:
    # 1, 10 -> 2..9 missing; 5 arrives -> 2..4 and 6..9
    gaps, last = record_seqs([], None, [1, 10])
    gaps, last = record_seqs(gaps, last, [5])
    assert gaps == [(2, 4), (6, 9)]
    assert missing_count(gaps) == 3 + 4
    # the ends of a gap: 2 and 9 arrive -> 3..4 and 6..8
    gaps, last = record_seqs(gaps, last, [2, 9])
    assert (gaps, last) == ([(3, 4), (6, 8)], 10)


def test_a_repeated_or_old_seq_changes_nothing() -> None:
    gaps, last = record_seqs([], None, [1, 4])
    assert record_seqs(gaps, last, [4, 1, 4]) == ([(2, 3)], 4)
    # a seq below everything seen that is in no gap: ignored, never fatal
    assert record_seqs([], 5, [3]) == ([], 5)


def test_out_of_order_within_one_call() -> None:
    # 3, 1, 2 arriving in that order: the first seen is 3; 1 and 2 are below it and in no gap
    assert record_seqs([], None, [3, 1, 2]) == ([], 3)
    # 1, 3, 2: 2 opens then closes within the same call
    assert record_seqs([], None, [1, 3, 2]) == ([], 3)


def test_only_the_latest_gaps_are_kept() -> None:
    # 0, 2, 4, ... opens a one-seq gap between each pair: keep the newest GAPS_KEPT_MAX
    seqs = list(range(0, 2 * (GAPS_KEPT_MAX + 5) + 1, 2))
    gaps, last = record_seqs([], None, seqs)
    assert len(gaps) == GAPS_KEPT_MAX
    assert gaps[-1] == (last - 1, last - 1)
    assert gaps[0] == (11, 11)  # the 5 oldest (1, 3, 5, 7, 9) were dropped
    assert missing_count(gaps) == GAPS_KEPT_MAX


def test_gaps_are_reported_per_source_never_fatal(make_workspace) -> None:
    from stockledger.service.reports import sources_report
    from tests.unit.builders import event, post

    def receipt(id: str, seq: int, source: str = "erp") -> str:
        return event(id, "receipt", "2026-01-02", source=source, seq=seq, location="WH1",
                     sku="WIDGET-1", qty="1", unit_cost="5.00")

    ws = make_workspace()
    # erp sends 1, 2, 5: 3 and 4 missing, yet all three post
    summary = post(ws, receipt("a", 1), receipt("b", 2), receipt("e", 5),
                   receipt("x", 9, source="wms"))
    assert summary.posted == 4
    report = {r["source"]: r for r in sources_report(ws)}
    assert (report["erp"]["last_seq"], report["erp"]["gaps"]) == (5, [[3, 4]])
    assert (report["wms"]["last_seq"], report["wms"]["gaps"]) == (9, [])
    # a duplicate of 5 changes nothing; 4 arrives late, then 3
    post(ws, receipt("e", 5), receipt("d", 4))
    assert {r["source"]: r["gaps"] for r in sources_report(ws)}["erp"] == [[3, 3]]
    post(ws, receipt("c", 3))
    erp = {r["source"]: r for r in sources_report(ws)}["erp"]
    assert (erp["gaps"], erp["events_posted"], erp["duplicates"]) == ([], 5, 1)
