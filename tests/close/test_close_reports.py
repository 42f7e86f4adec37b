"""Issue 6 (close the month): GRNI/GSNI open items, count accuracy, valuation
review, stock ledger, aging, balance sheet, income statement, valuation by
group. One small month posted by hand; every figure is worked out in the
comments."""

from __future__ import annotations

from typing import Any

import pytest

from stockledger.service import close, reports
from stockledger.service.workspace import UserError
from tests.conftest import base_setup
from tests.test_time_and_corrections import post, rcv, ship

PRODUCTS = [
    {"sku": "WIDGET-1", "category": "FG", "uom": "EA"},  # FIFO, COGS on shipment
    {"sku": "GADGET-2", "category": "INV", "uom": "EA", "aliases": ["G2"]},  # average, on invoice
]
CATEGORIES = [{"code": "FG", "valuation": "fifo", "cogs_on": "shipment"},
              {"code": "INV", "valuation": "average", "cogs_on": "invoice"}]
LOCATIONS = [{"code": "WH1", "entity": "ACME"}, {"code": "WH2", "entity": "ACME"}]


def setup(**more: Any) -> dict[str, Any]:
    return base_setup(products=PRODUCTS, categories=CATEGORIES, locations=LOCATIONS, **more)


def count(id_: str, date: str, sku: str, qty: str, loc: str = "WH1") -> dict[str, Any]:
    return {"id": id_, "type": "cycle_count", "date": date, "location": loc, "sku": sku,
            "qty": qty}


def bill(id_: str, date: str, ref: str, qty: str, cost: str, sku: str = "WIDGET-1") -> dict[str, Any]:
    return {"id": id_, "type": "vendor_bill", "date": date, "ref": ref, "sku": sku, "qty": qty,
            "unit_cost": cost}


# The month (WIDGET-1 FIFO, GADGET-2 average with COGS on invoice):
#   r0 2025-11-20  5 W @ 4.00 = 20.00, billed in full by b0 2025-12-01 (no price difference)
#   r1 2026-01-05 10 W @ 5.00 = 50.00
#   c3 2026-02-05 count G2 at WH1: 0 (book 0)
#   r3 2026-02-10  8 G @ 2.00 = 16.00
#   r2 2026-03-01 10 W @ 6.00 = 60.00
#   b1 2026-03-02 bill r1 4 W @ 5.50 = 22.00: GRNI cleared 50.00 x 4/10 = 20.00; the 2.00
#                 difference all on hand (r1's layer holds 10 of 10) -> r1 layer 52.00
#   pr1 2026-03-03 return 2 W of r2: GRNI 60.00 x 2/10 = 12.00, from r2's layer 12.00, PPV 0
#   t1 2026-03-05 3 W WH1 -> WH2, FIFO from r0: 3 x 4.00 = 12.00 (one account: no entry)
#   s1 2026-03-10 ship 6 W: r0's 2 (8.00) + 4 of r1 (52.00 x 4/10 = 20.80) = 28.80 COGS
#   s2 2026-03-11 ship 3 G at 16.00/8: 6.00 to GSNI
#   i2 2026-03-12 invoice 1 G of s2 at 9.00: AR/revenue 9.00; COGS 6.00 x 1/3 = 2.00 out of GSNI
#   c1 2026-03-20 count W at WH1: 13, book 6 (r1) + 8 (r2) = 14, -1 from r1 at 31.20/6 = 5.20
#   c2 2026-03-20 count W at WH2: 3, book 3, no variance
#   c4 2026-03-25 count G at WH1: 6, book 5, +1 at 10.00/5 = 2.00
#   r4 2026-03-28  4 G @ 2.50 = 10.00
MONTH = [
    rcv("r0", "2025-11-20", "5", "4.00"),
    bill("b0", "2025-12-01", "r0", "5", "4.00"),
    rcv("r1", "2026-01-05", "10", "5.00"),
    count("c3", "2026-02-05", "GADGET-2", "0"),
    rcv("r3", "2026-02-10", "8", "2.00", sku="GADGET-2"),
    rcv("r2", "2026-03-01", "10", "6.00"),
    bill("b1", "2026-03-02", "r1", "4", "5.50"),
    {"id": "pr1", "type": "purchase_return", "date": "2026-03-03", "ref": "r2",
     "location": "WH1", "sku": "WIDGET-1", "qty": "2"},
    {"id": "t1", "type": "transfer", "date": "2026-03-05", "from": "WH1", "to": "WH2",
     "sku": "WIDGET-1", "qty": "3"},
    ship("s1", "2026-03-10", "6"),
    ship("s2", "2026-03-11", "3", sku="G2"),
    {"id": "i2", "type": "customer_invoice", "date": "2026-03-12", "ref": "s2",
     "sku": "GADGET-2", "qty": "1", "unit_price": "9.00"},
    count("c1", "2026-03-20", "WIDGET-1", "13"),
    count("c2", "2026-03-20", "WIDGET-1", "3", loc="WH2"),
    count("c4", "2026-03-25", "GADGET-2", "6"),
    rcv("r4", "2026-03-28", "4", "2.50", sku="GADGET-2"),
]
MARCH_END = 20260331


@pytest.fixture
def ws(make_workspace: Any) -> Any:
    ws = make_workspace(setup())
    result = post(ws, *MONTH)
    assert result.posted == len(MONTH), [(r.ext_id, r.code, r.message) for r in result.results
                                         if r.status == "exception"]
    return ws


def short(items: list[dict[str, Any]], base: str, *keys: str) -> list[tuple]:
    return [(item[base]["id"], item["sku"], *(item[k] for k in keys)) for item in items]


def test_grni_open_items_aged_and_reconciled(ws: Any) -> None:
    report = close.grni_report(ws, MARCH_END)
    # r0 is fully billed (20.00 - 20.00): not open.
    # r1: 10 received, 4 billed, GRNI 50.00 - 20.00 = 30.00 open; Jan 5 -> Mar 31 = 85 days
    # r2: 10 received, 2 returned (12.00), none billed: 48.00 open; 30 days
    # r3: 8 G received at 16.00, none billed: 16.00; Feb 10 -> Mar 31 = 49 days
    # r4: 10.00, 3 days
    assert short(report["items"], "receipt", "qty_received", "qty_returned", "qty_billed",
                 "qty_open", "open", "days", "bucket", "status") == [
        ("r1", "WIDGET-1", "10", "0", "4", "6", "30.00", 85, "61-90", "partly billed"),
        ("r3", "GADGET-2", "8", "0", "0", "8", "16.00", 49, "31-60", "not billed"),
        ("r2", "WIDGET-1", "10", "2", "0", "8", "48.00", 30, "0-30", "not billed"),
        ("r4", "GADGET-2", "4", "0", "0", "4", "10.00", 3, "0-30", "not billed"),
    ]
    r1 = report["items"][0]
    # value received 50.00, billed at 22.00 (2.00 over the received price), GRNI cleared 20.00
    assert (r1["value_received"], r1["value_billed"], r1["grni_cleared_by_bills"],
            r1["location"]) == ("50.00", "22.00", "20.00", "WH1")
    assert report["items"][2]["grni_cleared_by_returns"] == "12.00"
    # 0-30: 48.00 + 10.00; 31-60: 16.00; 61-90: 30.00
    assert report["aging"] == {"0-30": "58.00", "31-60": "16.00", "61-90": "30.00", ">90": "0.00"}
    # GL 2100: -20 + 20 - 50 + 20 - 16 - 60 + 12 - 10 = -104.00 (a credit of 104.00)
    assert (report["subledger"], report["gl"], report["difference"], report["status"]) == (
        "104.00", "104.00", "0.00", "balanced")
    assert report["accounts"] == ["2100"] and report["unmatched"] == []


def test_grni_as_of_an_earlier_date(ws: Any) -> None:
    # Feb 28: b1 and pr1 are later; r1 (54 days) and r3 (18 days) are open: 50.00 + 16.00
    report = close.grni_report(ws, 20260228)
    assert short(report["items"], "receipt", "qty_billed", "open", "bucket") == [
        ("r1", "WIDGET-1", "0", "50.00", "31-60"), ("r3", "GADGET-2", "0", "16.00", "0-30")]
    assert (report["subledger"], report["gl"], report["status"]) == ("66.00", "66.00", "balanced")


def test_grni_bill_reversed_vendor_credit_and_an_unmatched_return(make_workspace: Any) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-05", "10", "5.00"),
         bill("b1", "2026-01-10", "r1", "10", "5.00"),
         {"id": "x1", "type": "reversal", "date": "2026-01-12", "ref": "b1"},
         bill("b2", "2026-01-15", "r1", "10", "5.20"),
         bill("b3", "2026-01-20", "r1", "-3", "5.20"),
         {"id": "pr2", "type": "purchase_return", "date": "2026-01-25", "location": "WH1",
          "sku": "WIDGET-1", "qty": "1"})
    report = close.grni_report(ws, 20260131)
    # b1 and its mirror cancel out; b2 clears 50.00 (AP 52.00); the credit b3 puts back
    # 50.00 x 3/10 = 15.00 (AP 15.60): 3 of 10 open, GRNI 15.00, billed 52.00 - 15.60 = 36.40
    assert short(report["items"], "receipt", "qty_billed", "qty_open", "value_billed",
                 "grni_cleared_by_bills", "open", "status") == [
        ("r1", "WIDGET-1", "7", "3", "36.40", "35.00", "15.00", "partly billed")]
    # pr2 refers to no receipt: GRNI debited at cost, r1's layer 50.00 + 2.00 - 0.60 = 51.40
    # for 10, one unit 5.14; it stays on the account, outside any receipt's items
    assert report["unmatched"] == [{
        "event": {"source": "default", "id": "pr2", "type": "purchase_return",
                  "date": "2026-01-25"},
        "sku": "WIDGET-1", "amount": "-5.14"}]
    # GL 2100: -50 + 50 - 50 + 50 - 15 + 5.14 = -9.86
    assert (report["subledger"], report["gl"], report["difference"], report["status"]) == (
        "15.00", "9.86", "5.14", "differences")


def test_gsni_open_items(ws: Any) -> None:
    report = close.gsni_report(ws, MARCH_END)
    # s2 shipped 3 G at 6.00; 1 invoiced moved 2.00 to COGS: 4.00 open, 20 days
    assert short(report["items"], "shipment", "qty_shipped", "qty_invoiced", "qty_open",
                 "value_shipped", "value_invoiced", "open", "days", "status") == [
        ("s2", "GADGET-2", "3", "1", "2", "6.00", "2.00", "4.00", 20, "partly invoiced")]
    assert report["aging"]["0-30"] == "4.00"
    assert (report["subledger"], report["gl"], report["status"]) == ("4.00", "4.00", "balanced")
    # the day before the invoice: all of s2's 6.00 is open
    assert close.gsni_report(ws, 20260311)["subledger"] == "6.00"


def test_count_accuracy(ws: Any) -> None:
    report = close.counts_report(ws, "2026-02-01..2026-03-31")
    # c3: book 0, counted 0 (accurate); c1: book 14, counted 13, -1 = -5.20 (1/14 = 7.14 %);
    # c2: book 3, counted 3; c4: book 5, counted 6, +1 = +2.00 (20 %)
    assert [(c["event"]["id"], c["location"], c["book_qty"], c["counted_qty"], c["variance_qty"],
             c["variance_value"], c["variance_pct"], c["accurate"]) for c in report["counts"]] == [
        ("c3", "WH1", "0", "0", "0", "0.00", None, True),
        ("c1", "WH1", "14", "13", "-1", "-5.20", "-7.14", False),
        ("c2", "WH2", "3", "3", "0", "0.00", "0.00", True),
        ("c4", "WH1", "5", "6", "1", "2.00", "20.00", False),
    ]
    # tolerance 0: 2 of 4; WH1 1 of 3 (c3), WH2 1 of 1; February 1 of 1, March 1 of 3
    assert report["total"] == {"counts": 4, "accurate": 2, "accuracy_pct": "50.00",
                               "variance_value": "-3.20"}
    assert [(r["location"], r["counts"], r["accurate"], r["accuracy_pct"], r["variance_value"])
            for r in report["by_location"]] == [("WH1", 3, 1, "33.33", "-3.20"),
                                                ("WH2", 1, 1, "100.00", "0.00")]
    assert [(r["month"], r["accuracy_pct"]) for r in report["by_month"]] == [
        ("2026-02", "100.00"), ("2026-03", "33.33")]
    # tolerance 10 %: c1 (7.14 %) is within; 20 %: c4 (exactly 20 %) too
    assert close.counts_report(ws, "2026-Q1", tolerance="10")["total"]["accuracy_pct"] == "75.00"
    assert close.counts_report(ws, "2026-Q1", tolerance="20")["total"]["accuracy_pct"] == "100.00"
    # a period without counts
    assert close.counts_report(ws, "2026-01")["total"] == {
        "counts": 0, "accurate": 0, "accuracy_pct": None, "variance_value": "0.00"}
    with pytest.raises(UserError, match="--tolerance"):
        close.counts_report(ws, "2026-03", tolerance="-1")


def test_valuation_review(ws: Any) -> None:
    report = close.valuation_review(ws, "2026-03", "10")
    assert (report["opening_date"], report["closing_date"]) == ("2026-02-28", "2026-03-31")
    lines = {(line["sku"], line["location"]): line for line in report["lines"]}
    # G at WH1: 8 @ 16.00 (2.00) -> 10 @ 22.00 (2.20): value +37.50 %, unit cost +10 % exactly
    # (not above the threshold)
    g = lines[("GADGET-2", "WH1")]
    assert (g["value_change_pct"], g["unit_cost_change_pct"], g["reasons"]) == (
        "37.50", "10.00", ["value"])
    # W at WH1: 15 @ 70.00 -> 13 @ 74.00: value +5.71 %, unit cost 70/15 -> 74/13 = +21.98 %
    w = lines[("WIDGET-1", "WH1")]
    assert w["opening"] == {"qty": "15", "value": "70.00", "unit_cost": "4.67"}
    assert w["closing"] == {"qty": "13", "value": "74.00", "unit_cost": "5.69"}
    assert (w["value_change_pct"], w["unit_cost_change_pct"], w["reasons"]) == (
        "5.71", "21.98", ["unit_cost"])
    # the movements behind it: 60.00 + 2.00 - 12.00 - 12.00 - 28.80 - 5.20 = +4.00
    assert [(m["event"]["id"], m["op"], m["qty"], m["value"], m["entry"] is not None)
            for m in w["movements"]] == [
        ("r2", "in", "10", "60.00", True), ("b1", "value", "0", "2.00", True),
        ("pr1", "out", "-2", "-12.00", True), ("t1", "out", "-3", "-12.00", False),
        ("s1", "out", "-6", "-28.80", True), ("c1", "count", "-1", "-5.20", True)]
    # W at WH2 starts from nothing
    assert lines[("WIDGET-1", "WH2")]["reasons"] == ["value"]
    assert len(lines) == 3
    # at 25 % the widget's unit cost move is not flagged
    assert {(line["sku"], line["location"]) for line in
            close.valuation_review(ws, "2026-03", "25")["lines"]} == {
        ("GADGET-2", "WH1"), ("WIDGET-1", "WH2")}


def test_stock_ledger(ws: Any) -> None:
    report = close.stock_ledger(ws, "widget_1", "WH1")  # normalized SKU
    assert report["sku"] == "WIDGET-1"
    rows = [(m["date"], m["event"]["id"], m["qty"], m["value"], m["running_qty"],
             m["running_value"], m["unit_cost"]) for m in report["movements"]]
    assert rows == [
        ("2025-11-20", "r0", "5", "20.00", "5", "20.00", "4.00"),
        ("2025-12-01", "b0", "0", "0.00", "5", "20.00", "4.00"),  # billed at the received price
        ("2026-01-05", "r1", "10", "50.00", "15", "70.00", "4.67"),
        ("2026-03-01", "r2", "10", "60.00", "25", "130.00", "5.20"),
        ("2026-03-02", "b1", "0", "2.00", "25", "132.00", "5.28"),
        ("2026-03-03", "pr1", "-2", "-12.00", "23", "120.00", "5.22"),
        ("2026-03-05", "t1", "-3", "-12.00", "20", "108.00", "5.40"),
        ("2026-03-10", "s1", "-6", "-28.80", "14", "79.20", "5.66"),
        ("2026-03-20", "c1", "-1", "-5.20", "13", "74.00", "5.69"),
    ]
    # every movement with a GL effect names its journal entry; the transfer has none
    by_event = {m["event"]["id"]: m["entry"] for m in report["movements"]}
    assert by_event["t1"] is None
    journal = {e["event"]["id"]: e["entry"] for e in reports.journal(ws)}
    assert all(by_event[event] == journal[event] for event in by_event if event != "t1")
    # all locations, as of a date, by alias
    everywhere = close.stock_ledger(ws, "G2", as_of=20260315)
    assert [(m["event"]["id"], m["running_qty"]) for m in everywhere["movements"]] == [
        ("c3", "0"), ("r3", "8"), ("s2", "5")]
    with pytest.raises(UserError, match="unknown SKU"):
        close.stock_ledger(ws, "NOPE")
    with pytest.raises(UserError, match="unknown location"):
        close.stock_ledger(ws, "WIDGET-1", "WH9")


def test_aging(ws: Any) -> None:
    report = close.aging_report(ws, MARCH_END)
    lines = {(line["sku"], line["location"]): line for line in report["lines"]}
    # W at WH1: r1's 5 @ 26.00 (85 days) and r2's 8 @ 48.00 (30 days)
    assert {k: v for k, v in lines[("WIDGET-1", "WH1")]["buckets"].items() if v["qty"] != "0"} == {
        "0-30": {"qty": "8", "value": "48.00"}, "61-90": {"qty": "5", "value": "26.00"}}
    # W at WH2 came by transfer on Mar 5 from r0 (Nov 20): aged from r0, 131 days
    assert lines[("WIDGET-1", "WH2")]["buckets"]["91-180"] == {"qty": "3", "value": "12.00"}
    # G (average pool) 10 @ 22.00, taken as the latest inflows: r4 4 (3 days), c4 1 (6 days),
    # 5 of r3 (49 days); value split 22.00 x 4/10 = 8.80, 13.20 x 1/6 = 2.20, rest 11.00
    assert {k: v for k, v in lines[("GADGET-2", "WH1")]["buckets"].items() if v["qty"] != "0"} == {
        "0-30": {"qty": "5", "value": "11.00"}, "31-60": {"qty": "5", "value": "11.00"}}
    assert report["totals"] == {"0-30": "59.00", "31-60": "11.00", "61-90": "26.00",
                                "91-180": "12.00", ">180": "0.00"}
    assert report["total_value"] == report["valuation_total"] == "108.00"
    assert report["total_value"] == reports.valuation(ws, MARCH_END)["total_value"]
    assert report["status"] == "balanced"
    # the same without --as-of (from the stored positions)
    assert close.aging_report(ws)["totals"] == report["totals"]


def test_aging_as_of_replays_the_layers(ws: Any) -> None:
    # Mar 8 (after t1, before s1): W at WH1 r0 2 @ 8.00 (Nov 20: 108 days), r1 10 @ 52.00
    # (62 days), r2 8 @ 48.00 (7 days); W at WH2 3 @ 12.00 (from r0, 108 days); G 8 @ 16.00
    # (r3, 26 days)
    report = close.aging_report(ws, 20260308)
    assert report["totals"] == {"0-30": "64.00", "31-60": "0.00", "61-90": "52.00",
                                "91-180": "20.00", ">180": "0.00"}
    assert report["total_value"] == reports.valuation(ws, 20260308)["total_value"] == "136.00"
    assert report["status"] == "balanced"


def test_balance_sheet_and_income_statement(ws: Any) -> None:
    sheet = close.balance_sheet(ws, MARCH_END)
    # assets: inventory 108.00, GSNI 4.00, AR 9.00; liabilities: AP 20.00 + 22.00, GRNI 104.00
    assert [(a["code"], a["balance"]) for a in sheet["assets"]] == [
        ("1200", "9.00"), ("1300", "108.00"), ("1350", "4.00")]
    assert [(a["code"], a["balance"]) for a in sheet["liabilities"]] == [
        ("2000", "42.00"), ("2100", "104.00")]
    # earnings: revenue 9.00 - COGS 30.80 - adjustments 3.20 = -25.00, all in 2026
    assert [(a["name"], a["balance"]) for a in sheet["equity"]] == [
        ("Retained earnings (earlier years)", "0.00"), ("Current-year earnings", "-25.00")]
    assert (sheet["total_assets"], sheet["total_liabilities_and_equity"], sheet["status"]) == (
        "121.00", "121.00", "balanced")

    income = close.income_statement(ws, "2026-03")
    # revenue 9.00 (i2); COGS 28.80 (s1) + 2.00 (i2) = 30.80; margin -21.80
    assert (income["revenue"], income["cogs"], income["gross_margin"]) == ("9.00", "30.80", "-21.80")
    assert [(r["sku"], r["category"], r["revenue"], r["cogs"], r["gross_margin"],
             r["gross_margin_pct"]) for r in income["by_sku"]] == [
        ("GADGET-2", "INV", "9.00", "2.00", "7.00", "77.78"),
        ("WIDGET-1", "FG", "0.00", "28.80", "-28.80", None)]
    assert [(r["category"], r["gross_margin"]) for r in income["by_category"]] == [
        ("FG", "-28.80"), ("INV", "7.00")]
    # other expenses: adjustments -5.20 + 2.00 = 3.20 net; net income 9.00 - 34.00
    assert [(a["code"], a["amount"]) for a in income["expenses"]] == [
        ("5000", "30.80"), ("5200", "3.20")]
    assert (income["total_income"], income["total_expenses"], income["net_income"]) == (
        "9.00", "34.00", "-25.00")
    # default period: the calendar year to the latest date
    assert close.income_statement(ws)["period"] == {"from": "2026-01-01", "to": "2026-03-28"}


def test_balance_sheet_carries_earlier_years_as_retained_earnings(make_workspace: Any) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2025-12-01", "10", "1.00"), ship("s1", "2025-12-15", "4"),
         ship("s2", "2026-01-10", "1"))
    sheet = close.balance_sheet(ws, 20260131)
    # inventory 5.00 = GRNI 10.00 + retained -4.00 (2025 COGS) + current -1.00 (2026 COGS)
    assert [(a["name"], a["balance"]) for a in sheet["equity"]] == [
        ("Retained earnings (earlier years)", "-4.00"), ("Current-year earnings", "-1.00")]
    assert (sheet["total_assets"], sheet["total_liabilities_and_equity"], sheet["status"]) == (
        "5.00", "5.00", "balanced")
    assert close.income_statement(ws, "2025")["net_income"] == "-4.00"


def test_valuation_by_group_and_default_unchanged(ws: Any) -> None:
    plain = reports.valuation(ws, MARCH_END)
    assert set(plain) == {"as_of", "entity", "lines", "total_value"}
    assert [(line["sku"], line["location"], line["qty"], line["value"]) for line in plain["lines"]] == [
        ("GADGET-2", "WH1", "10", "22.00"), ("WIDGET-1", "WH1", "13", "74.00"),
        ("WIDGET-1", "WH2", "3", "12.00")]
    by_sku = reports.valuation(ws, MARCH_END, by="sku")
    assert by_sku["lines"] == [{"sku": "GADGET-2", "qty": "10", "value": "22.00"},
                               {"sku": "WIDGET-1", "qty": "16", "value": "86.00"}]
    assert reports.valuation(ws, MARCH_END, by="location")["lines"] == [
        {"location": "WH1", "value": "96.00"}, {"location": "WH2", "value": "12.00"}]
    assert reports.valuation(ws, MARCH_END, by="category")["lines"] == [
        {"category": "FG", "value": "86.00"}, {"category": "INV", "value": "22.00"}]
    assert by_sku["total_value"] == plain["total_value"] == "108.00"
    with pytest.raises(UserError, match="--by"):
        reports.valuation(ws, by="colour")


def test_stock_ledger_shows_recosts_with_their_cause(make_workspace: Any) -> None:
    ws = make_workspace(setup())
    # s1 took 5 of r1 at 25.00; r0 backdated before it gives s1 its 5 @ 4.00 = 20.00:
    # a recost of +5.00 on s1 (inventory back), dated at s1, caused by r0
    post(ws, rcv("r1", "2026-01-10", "10", "5.00"), ship("s1", "2026-01-15", "5"))
    post(ws, rcv("r0", "2026-01-05", "5", "4.00"))
    report = close.stock_ledger(ws, "WIDGET-1")
    assert [(m["event"]["id"], m["kind"], m["qty"], m["value"], m["running_qty"],
             m["running_value"], m.get("caused_by", {}).get("id")) for m in report["movements"]] == [
        ("r0", "post", "5", "20.00", "5", "20.00", None),
        ("r1", "post", "10", "50.00", "15", "70.00", None),
        ("s1", "post", "-5", "-25.00", "10", "45.00", None),
        ("s1", "recost", "0", "5.00", "10", "50.00", "r0"),
    ]
    recost = [e for e in reports.journal(ws, event="s1") if e["kind"] == "recost"]
    assert report["movements"][-1]["entry"] == recost[0]["entry"]


def test_negative_stock_is_aged_apart_and_settles(make_workspace: Any) -> None:
    ws = make_workspace(setup(policies={"negative_stock": "allow"}))
    # s1 ships 12 of 10: 2 short, valued at 5.00 -> WH1 at -2, -10.00
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), ship("s1", "2026-01-05", "12"))
    owed = close.aging_report(ws, 20260106)
    assert owed["lines"][0]["negative_stock"] == {"qty": "-2", "value": "-10.00"}
    assert (owed["negative_stock"], owed["total_value"], owed["valuation_total"]) == (
        "-10.00", "-10.00", "-10.00")
    # r2 4 @ 6.50: 2 settle the shortfall at 13.00 (recost 3.00 on s1, dated at r2), 2 stay
    post(ws, rcv("r2", "2026-01-08", "4", "6.50"))
    aged = close.aging_report(ws, 20260131)
    assert aged["totals"]["0-30"] == aged["total_value"] == aged["valuation_total"] == "13.00"
    assert close.aging_report(ws, 20260106)["total_value"] == "-10.00"  # replayed as of Jan 6
    ledger = close.stock_ledger(ws, "WIDGET-1", "WH1")
    assert [(m["event"]["id"], m["kind"], m["value"], m["running_value"],
             m.get("caused_by", {}).get("id")) for m in ledger["movements"]] == [
        ("r1", "post", "50.00", "50.00", None), ("s1", "post", "-60.00", "-10.00", None),
        ("r2", "post", "26.00", "16.00", None), ("s1", "recost", "-3.00", "13.00", "r2")]
