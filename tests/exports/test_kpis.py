"""`report kpis`: every figure of the fixed ledger (dataset.py) checked against
arithmetic done by hand in the comments."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from stockledger.service import kpis, reports
from stockledger.service.audit import add_manual_entry
from stockledger.service.ingest import parse_lines, post_events
from stockledger.service.workspace import UserError
from tests.conftest import base_setup

FEBRUARY = reports.parse_period("2026-02")


def post(ws: Any, *events: dict[str, Any]) -> None:
    summary = post_events(ws, parse_lines([json.dumps(e) for e in events]), keep_results=True)
    assert all(r.status == "posted" for r in summary.results), [
        (r.ext_id, r.code, r.message) for r in summary.results]


def test_february(ledger: Any) -> None:
    got = kpis.kpis(ledger, FEBRUARY)
    assert got["period"] == {"from": "2026-02-01", "to": "2026-02-28", "days": 28}
    assert (got["entity"], got["currency"]) == ("ACME", "USD")
    # m1 is the only entry that no inventory event produced
    assert got["manual_entries"] == 1
    rec = got["reconciliation"]
    assert (rec["status"], rec["differences"], rec["difference_value"], rec["items"]) == (
        "balanced", 0, "0.00", 0)
    assert rec["as_of"] == "2026-02-28" and rec["seconds"] >= 0
    # c2 counted 12 against a book of 14 (variance -2), c3 counted 12 against 12: 1 of 2
    assert got["counts"] == {"lines": 2, "accurate": 1, "accuracy_pct": "50.00",
                             "tolerance_pct": "0"}
    # s2 took 5 @ 6.00 + 5 @ 7.00
    assert got["cogs"] == "65.00"
    # end-of-day balances of 1300:
    #   02-01..02-02  2 days x  30.00 =   60.00
    #   02-03..02-09  7 days x 170.00 = 1190.00   (r3 +140)
    #   02-10..02-11  2 days x 105.00 =  210.00   (s2 -65)
    #   02-12..02-14  3 days x  98.00 =  294.00   (a1 -7)
    #   02-15..02-20  6 days x  84.00 =  504.00   (c2 -14; c3 0)
    #   02-21..02-28  8 days x  91.00 =  728.00   (a2 +7; a3 -7 and its mirror +7 on 02-22)
    #   sum 2986.00 over 28 days: average 106.642857 -> 106.64
    assert got["inventory"] == {"opening": "30.00", "closing": "91.00", "average": "106.64"}
    # turnover 65.00 / 106.642857 = 65 x 28 / 2986 = 0.6095 -> 0.61
    assert got["turnover"] == "0.61"
    # days of inventory 28 / 0.6095 = 2986 / 65 = 45.94 -> 45.9
    assert got["days_of_inventory"] == "45.9"
    # losses: a1 7.00 + c2 14.00 = 21.00 (a3 was reversed: nothing); gains: a2 7.00
    assert (got["write_offs"], got["adjustment_gains"]) == ("21.00", "7.00")
    # 25% x 106.642857 x 28 / 365 = 0.25 x 2986 / 365 = 2.0452 -> 2.05
    assert (got["carrying_rate_pct"], got["carrying_cost"]) == ("25", "2.05")


def test_quarter_averages_every_day(ledger: Any) -> None:
    got = kpis.kpis(ledger, reports.parse_period("2026-Q1"))
    assert got["period"]["days"] == 90  # 31 + 28 + 31
    # January: 01-01 1 x 0 + 01-02..04 3 x 50 + 01-05..09 5 x 110 + 01-10..31 22 x 30 = 1360
    # February 2986 (test_february), March 31 x 91 = 2821: 7167 over 90 days = 79.633
    assert got["inventory"] == {"opening": "0.00", "closing": "91.00", "average": "79.63"}
    assert got["cogs"] == "145.00"  # 80.00 + 65.00
    assert got["turnover"] == "1.82"  # 145 x 90 / 7167 = 1.8208
    assert got["days_of_inventory"] == "49.4"  # 7167 / 145 = 49.43
    assert got["carrying_cost"] == "4.91"  # 0.25 x 7167 / 365 = 4.9089
    assert got["counts"]["lines"] == 3 and got["counts"]["accuracy_pct"] == "66.67"  # c1, c3 of 3
    assert (got["write_offs"], got["adjustment_gains"]) == ("21.00", "7.00")
    assert got["manual_entries"] == 1


def test_count_tolerance_and_carrying_rate(ledger: Any) -> None:
    # c2: |-2| / 14 = 14.29%: within 15%, not within 14%
    loose = kpis.kpis(ledger, FEBRUARY, count_tolerance_pct=Decimal("15"))
    assert loose["counts"] == {"lines": 2, "accurate": 2, "accuracy_pct": "100.00",
                               "tolerance_pct": "15"}
    tight = kpis.kpis(ledger, FEBRUARY, count_tolerance_pct=Decimal("14"))
    assert tight["counts"]["accurate"] == 1
    # 30% x 2986 / 365 = 2.4542 -> 2.45
    assert kpis.kpis(ledger, FEBRUARY, carrying_rate_pct=Decimal("30"))["carrying_cost"] == "2.45"


def test_a_month_with_nothing_in_it(ledger: Any) -> None:
    got = kpis.kpis(ledger, reports.parse_period("2026-04"))
    # inventory sits at 91.00 all month, nothing is sold or counted
    assert got["inventory"] == {"opening": "91.00", "closing": "91.00", "average": "91.00"}
    assert (got["cogs"], got["turnover"], got["days_of_inventory"]) == ("0.00", "0.00", None)
    assert got["counts"] == {"lines": 0, "accurate": 0, "accuracy_pct": None,
                             "tolerance_pct": "0"}
    assert (got["manual_entries"], got["write_offs"]) == (0, "0.00")
    # 0.25 x 91.00 x 30 / 365 = 1.8699 -> 1.87
    assert got["carrying_cost"] == "1.87"


def test_reconciliation_differences_are_counted_and_valued(make_workspace: Any) -> None:
    ws = make_workspace()
    post(ws, {"id": "r1", "type": "receipt", "date": "2026-03-02", "location": "WH1",
              "sku": "WIDGET-1", "qty": "4", "unit_cost": "2.50"})
    # a hand-posted 5.00 on the inventory account: GL 15.00, subledger 10.00
    add_manual_entry(ws, {"id": "fix", "date": "2026-03-03", "reason": "test",
                          "lines": [{"account": "1300", "debit": "5.00"},
                                    {"account": "3000", "credit": "5.00"}]},
                     allow_control_account=True, control_reason="testing the KPI")
    got = kpis.kpis(ws, reports.parse_period("2026-03"))
    rec = got["reconciliation"]
    assert (rec["status"], rec["differences"], rec["difference_value"]) == (
        "differences", 1, "5.00")
    assert got["manual_entries"] == 1


def test_counts_as_they_stand_after_recosts_and_reversals(make_workspace: Any) -> None:
    ws = make_workspace()
    w = {"location": "WH1", "sku": "WIDGET-1"}
    post(ws, {"id": "r1", "type": "receipt", "date": "2026-03-02", **w, "qty": "10",
              "unit_cost": "1.00"},
         {"id": "k1", "type": "cycle_count", "date": "2026-03-10", **w, "qty": "10"},
         {"id": "k2", "type": "cycle_count", "date": "2026-03-11", **w, "qty": "9"},
         {"id": "x2", "type": "reversal", "date": "2026-03-12", "ref": "k2"})
    # k1 exact, k2 reversed (as if never counted): 1 of 1
    assert kpis.kpis(ws, reports.parse_period("2026-03"))["counts"]["accuracy_pct"] == "100.00"
    # a receipt of 2 backdated before k1: book 12 at the count, counted 10, variance -2
    post(ws, {"id": "r0", "type": "receipt", "date": "2026-03-05", **w, "qty": "2",
              "unit_cost": "1.00"})
    counts = kpis.kpis(ws, reports.parse_period("2026-03"))["counts"]
    assert (counts["lines"], counts["accurate"]) == (1, 0)
    # |-2| / 12 = 16.67%
    counts = kpis.kpis(ws, reports.parse_period("2026-03"), count_tolerance_pct=Decimal("17"))[
        "counts"]
    assert counts["accurate"] == 1


def test_count_line_rule() -> None:
    line = kpis.CountLine(1, 20260101, counted_micro=12_000_000, variance_micro=-2_000_000)
    assert line.book_micro == 14_000_000
    assert not line.accurate(Decimal(0))
    # 2 / 14 = 14.2857142...%
    assert line.accurate(Decimal("14.285715")) and not line.accurate(Decimal("14.285714"))
    # counted 3 where the book said 0: never accurate; nothing where the book said nothing: exact
    assert not kpis.CountLine(1, 20260101, 3_000_000, 3_000_000).accurate(Decimal(100))
    assert kpis.CountLine(1, 20260101, 0, 0).accurate(Decimal(0))
    # a negative book (negative stock allowed): measured against its size
    assert kpis.CountLine(1, 20260101, 0, 2_000_000).accurate(Decimal(100))


def test_count_accuracy_is_the_one_of_report_counts(ledger: Any) -> None:
    """KPIs and charts take the accuracy from `report counts` when it is installed;
    the fallback computes the same."""
    for tolerance in (Decimal(0), Decimal("14"), Decimal("15")):
        for start, end in ((None, None), FEBRUARY):
            shared = kpis.count_accuracy(ledger, None, start, end, tolerance)
            own = kpis.own_count_accuracy(ledger, None, start, end, tolerance)
            assert shared == own
    assert kpis.own_count_accuracy(ledger, None, None, None, Decimal(0)) == {
        202601: (1, 1), 202602: (2, 1)}


@pytest.mark.parametrize("text, wanted", [(None, "25"), ("30", "30"), ("12.5%", "12.5"),
                                          (" 0 ", "0")])
def test_carrying_rate_option(text: str | None, wanted: str) -> None:
    assert kpis.parse_rate_pct(text) == Decimal(wanted)


@pytest.mark.parametrize("text", ["abc", "-1", "1001", "NaN", "Infinity"])
def test_carrying_rate_option_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--carrying-rate"):
        kpis.parse_rate_pct(text)


@pytest.mark.parametrize("text", ["x", "-0.1", "101", "0.0000001"])
def test_count_tolerance_option_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--count-tolerance"):
        kpis.parse_tolerance(text)


def test_ratio_text_is_exact() -> None:
    # 2 / 3 = 0.6666... -> 0.67; -2 / 3 -> -0.67 (half away from zero); 1 / 8 = 0.125 -> 0.13
    assert kpis.ratio_text(2, 3, 2) == "0.67"
    assert kpis.ratio_text(-2, 3, 2) == "-0.67"
    assert kpis.ratio_text(1, 8, 2) == "0.13"
    assert kpis.ratio_text(1, 0, 2) is None
    assert base_setup()["roles"]["cogs"] == "5000"  # the accounts the comments above rely on
