"""Issue 4 worked cases: backdating cascades, reversals, periods, negative stock
'allow', as-of stability. Figures computed by hand in the comments."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from stockledger.service import reports
from stockledger.service.ingest import parse_lines, post_events
from tests.conftest import base_setup

D = Decimal


def post(ws: Any, *events: dict[str, Any]) -> Any:
    return post_events(ws, parse_lines([json.dumps(e) for e in events]), keep_results=True)


def rcv(id_: str, date: str, qty: str, cost: str, sku: str = "WIDGET-1", loc: str = "WH1",
        **extra: Any) -> dict[str, Any]:
    return {"id": id_, "type": "receipt", "date": date, "location": loc, "sku": sku,
            "qty": qty, "unit_cost": cost, **extra}


def ship(id_: str, date: str, qty: str, sku: str = "WIDGET-1", loc: str = "WH1") -> dict[str, Any]:
    return {"id": id_, "type": "shipment", "date": date, "location": loc, "sku": sku, "qty": qty}


def tb(ws: Any, as_of: int | None = None) -> dict[str, Decimal]:
    return {a["code"]: D(a["balance"]) for a in reports.trial_balance(ws, as_of)["accounts"]}


def val(ws: Any, key: str, as_of: int | None = None) -> tuple[Decimal, Decimal]:
    for line in reports.valuation(ws, as_of)["lines"]:
        if f"{line['sku']}@{line['location']}" == key:
            return D(line["qty"]), D(line["value"])
    return D(0), D(0)


def entries(ws: Any, event: str, kind: str) -> dict[tuple[str, str], Decimal]:
    """Amounts per (account, side) over the event's entries of `kind`."""
    out: dict[tuple[str, str], Decimal] = {}
    for entry in reports.journal(ws, event=event):
        if entry["kind"] != kind:
            continue
        for line in entry["lines"]:
            for side in ("debit", "credit"):
                if D(line[side]):
                    out[(line["account"], side)] = out.get((line["account"], side), 0) + D(line[side])
    return out


def exceptions(ws: Any) -> dict[str, str]:
    return {e["id"]: e["code"] for e in reports.exceptions_list(ws)}


def assert_reconciled_every_date(ws: Any, dates: list[int]) -> None:
    for day in sorted(set(dates)) + [None]:
        report = reports.reconcile(ws, day)
        assert report["status"] == "balanced", (day, report)


def test_negative_stock_allow_settles_at_the_inflow(make_workspace) -> None:
    setup = base_setup(policies={"negative_stock": "allow"})
    ws = make_workspace(setup)
    # r1 10 @ 5.00, s1 ships 12: 10 from stock (50.00) + 2 short at the last inflow's 5.00 = 60.00
    result = post(ws, rcv("r1", "2026-01-02", "10", "5.00"), ship("s1", "2026-01-05", "12"))
    assert result.posted == 2
    assert entries(ws, "s1", "post") == {("5000", "debit"): D("60.00"), ("1300", "credit"): D("60.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("-2"), D("-10.00"))
    # r2 4 @ 6.50 = 26.00: 2 settle the shortfall at 13.00 (10.00 assigned): recost 3.00 on s1,
    # dated at r2; the other 2 stay on hand at 13.00
    post(ws, rcv("r2", "2026-01-08", "4", "6.50"))
    recost = reports.journal(ws, event="s1")
    settle = [e for e in recost if e["kind"] == "recost"]
    assert [e["date"] for e in settle] == ["2026-01-08"]
    assert settle[0]["caused_by"] == {"source": "default", "id": "r2"}
    assert entries(ws, "s1", "recost") == {("5000", "debit"): D("3.00"), ("1300", "credit"): D("3.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("2"), D("13.00"))
    assert tb(ws)["5000"] == D("63.00")  # 10 x 5.00 + 2 x 6.50
    assert tb(ws, 20260105)["5000"] == D("60.00")  # before the settlement
    assert_reconciled_every_date(ws, [20260102, 20260105, 20260108])


def test_backdated_receipt_recosts_through_a_transfer(make_workspace) -> None:
    setup = base_setup(mapping=base_setup()["mapping"] + [
        {"role": "inventory", "location": "WH2", "account": "1320"}],
        locations=[{"code": "WH1", "entity": "ACME"}, {"code": "WH2", "entity": "ACME"}])
    ws = make_workspace(setup)
    post(ws, rcv("r1", "2026-01-10", "10", "5.00"),
         {"id": "t1", "type": "transfer", "date": "2026-01-12", "from": "WH1", "to": "WH2",
          "sku": "WIDGET-1", "qty": "4"},
         ship("s2", "2026-01-15", "4", loc="WH2"))
    # before: t1 moved 4 x 5.00 = 20.00; s2 shipped them at 20.00
    assert entries(ws, "s2", "post") == {("5000", "debit"): D("20.00"), ("1320", "credit"): D("20.00")}
    # r0 3 @ 2.00 dated before everything: FIFO t1 now takes 3 x 2.00 + 1 x 5.00 = 11.00
    result = post(ws, rcv("r0", "2026-01-05", "3", "2.00"))
    assert result.posted == 1 and result.recosts == 2
    # t1 recost: WH2 inventory -9.00, WH1 inventory +9.00; s2 recost: COGS -9.00, WH2 +9.00
    assert entries(ws, "t1", "recost") == {("1300", "debit"): D("9.00"), ("1320", "credit"): D("9.00")}
    assert entries(ws, "s2", "recost") == {("1320", "debit"): D("9.00"), ("5000", "credit"): D("9.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("9"), D("45.00"))  # 9 x 5.00
    assert tb(ws)["5000"] == D("11.00")
    assert_reconciled_every_date(ws, [20260105, 20260110, 20260112, 20260115])


def test_backdated_receipt_recosts_the_invoice_under_cogs_on_invoice(make_workspace) -> None:
    setup = base_setup(categories=[{"code": "FG", "valuation": "fifo", "cogs_on": "invoice"}])
    ws = make_workspace(setup)
    post(ws, rcv("r1", "2026-01-10", "10", "5.00"), ship("s1", "2026-01-12", "4"),
         {"id": "i1", "type": "customer_invoice", "date": "2026-01-14", "ref": "s1",
          "sku": "WIDGET-1", "qty": "2", "unit_price": "9.00"})
    # s1: GSNI 20.00; i1 moves 2/4 of it = 10.00 to COGS
    assert tb(ws)["1350"] == D("10.00") and tb(ws)["5000"] == D("10.00")
    # r0 2 @ 1.00 before: s1 costs 2 x 1.00 + 2 x 5.00 = 12.00 (recost -8.00 on GSNI);
    # i1 now moves 2/4 of 12.00 = 6.00 (recost -4.00 on COGS, +4.00 back to GSNI)
    post(ws, rcv("r0", "2026-01-05", "2", "1.00"))
    assert entries(ws, "s1", "recost") == {("1300", "debit"): D("8.00"), ("1350", "credit"): D("8.00")}
    assert entries(ws, "i1", "recost") == {("1350", "debit"): D("4.00"), ("5000", "credit"): D("4.00")}
    assert tb(ws)["1350"] == D("6.00") and tb(ws)["5000"] == D("6.00")
    assert_reconciled_every_date(ws, [20260105, 20260110, 20260112, 20260114])


def test_backdated_receipt_changes_a_count_variance(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "20", "3.00"),
         {"id": "c1", "type": "cycle_count", "date": "2026-01-10", "location": "WH1",
          "sku": "WIDGET-1", "qty": "18"})
    # book 20, counted 18: -2 x 3.00 = 6.00 to adjustments
    assert tb(ws)["5200"] == D("6.00")
    # r0 5 @ 3.00 dated before the count: book 25, counted 18: -7 x 3.00 = 21.00
    result = post(ws, rcv("r0", "2026-01-05", "5", "3.00"))
    assert result.recosts == 1
    assert entries(ws, "c1", "recost") == {("5200", "debit"): D("15.00"), ("1300", "credit"): D("15.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("18"), D("54.00"))
    assert_reconciled_every_date(ws, [20260102, 20260105, 20260110])


def test_backdated_shipment_changes_a_bill_split(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"),
         {"id": "b1", "type": "vendor_bill", "date": "2026-01-10", "ref": "r1", "sku": "WIDGET-1",
          "qty": "10", "unit_cost": "5.50"})
    # nothing consumed yet: the whole 5.00 difference raises the layer
    assert entries(ws, "b1", "post")[("1300", "debit")] == D("5.00")
    # s0 ships 4 on 01-05, before the bill: remaining 6 -> 3.00 to inventory, 2.00 to COGS
    result = post(ws, ship("s0", "2026-01-05", "4"))
    assert result.posted == 1 and result.recosts == 1
    assert entries(ws, "b1", "recost") == {("5000", "debit"): D("2.00"), ("1300", "credit"): D("2.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("6"), D("33.00"))
    assert tb(ws)["5000"] == D("22.00")  # s0 20.00 + the consumed share 2.00
    assert_reconciled_every_date(ws, [20260102, 20260105, 20260110])


def test_backdated_outflow_that_would_leave_later_shipments_short_is_rejected(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), ship("s1", "2026-01-10", "8"))
    result = post(ws, ship("s0", "2026-01-05", "5"))
    assert exceptions(ws) == {"s0": "INSUFFICIENT_STOCK"}
    assert result.posted == 0 and result.recosts == 0
    assert tb(ws)["5000"] == D("40.00")


def test_reversal_mirrors_at_the_original_date_and_recosts_later_outflows(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "10", "4.00"), rcv("r2", "2026-01-03", "10", "6.00"),
         ship("s1", "2026-01-08", "5"))
    assert entries(ws, "s1", "post")[("5000", "debit")] == D("20.00")  # 5 x 4.00
    result = post(ws, {"id": "x1", "type": "reversal", "date": "2026-01-20", "ref": "r1"})
    assert result.posted == 1
    mirror = [e for e in reports.journal(ws, event="x1") if e["kind"] == "reversal"]
    assert [e["date"] for e in mirror] == ["2026-01-02"]  # at the original's date
    assert entries(ws, "x1", "reversal") == {("2100", "debit"): D("40.00"), ("1300", "credit"): D("40.00")}
    # without r1, s1 takes 5 x 6.00 = 30.00: recost +10.00 on s1 at its own date
    assert entries(ws, "s1", "recost") == {("5000", "debit"): D("10.00"), ("1300", "credit"): D("10.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("5"), D("30.00"))
    explained = reports.explain(ws, "r1")
    assert explained["reversed_by"]["id"] == "x1" and explained["reversed_by"]["reversed_at"]
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260108, 20260120])


def test_reversal_rules(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), ship("s1", "2026-01-05", "8"),
         rcv("r2", "2026-01-06", "1", "5.00"),
         {"id": "b2", "type": "vendor_bill", "date": "2026-01-07", "ref": "r2", "sku": "WIDGET-1",
          "qty": "1", "unit_cost": "5.00"},
         {"id": "x1", "type": "reversal", "date": "2026-01-09", "ref": "r1"},  # s1 would go short
         {"id": "x2", "type": "reversal", "date": "2026-01-09", "ref": "s1"},
         {"id": "x3", "type": "reversal", "date": "2026-01-09", "ref": "s1"},  # already reversed
         {"id": "x4", "type": "reversal", "date": "2026-01-09", "ref": "x2"},  # a reversal
         {"id": "x5", "type": "reversal", "date": "2026-01-09", "ref": "r2"},  # b2 refers to it
         {"id": "x6", "type": "reversal", "date": "2026-01-09", "ref": "nope"})
    assert exceptions(ws) == {"x1": "INSUFFICIENT_STOCK", "x3": "ALREADY_REVERSED",
                              "x4": "INVALID_EVENT", "x5": "INVALID_EVENT",
                              "x6": "UNKNOWN_REFERENCE"}
    assert tb(ws)["5000"] == D("0.00")
    assert val(ws, "WIDGET-1@WH1") == (D("11"), D("55.00"))


def test_periods_lock_dates_and_recosts(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-10", "10", "5.00"), ship("s1", "2026-01-20", "4"),
         ship("s2", "2026-02-05", "2"))
    reports.period_close(ws, "ACME", 20260131)
    # r0 is dated after the close: it posts (FIFO: s2 still takes the older r1 layer);
    # r00 is dated in closed January; x1 would mirror s1 into closed January
    post(ws, rcv("r0", "2026-02-01", "1", "1.00"),
         rcv("r00", "2026-01-05", "1", "1.00"),
         {"id": "x1", "type": "reversal", "date": "2026-02-10", "ref": "s1"})
    codes = exceptions(ws)
    assert codes == {"r00": "PERIOD_CLOSED", "x1": "PERIOD_CLOSED"}
    assert entries(ws, "s2", "recost") == {}
    assert val(ws, "WIDGET-1@WH1") == (D("5"), D("21.00"))  # 4 x 5.00 + 1 x 1.00
    # reopen January (closed through Dec 31 now): the queued events post on retry
    reports.period_reopen(ws, "ACME", 20251231, "late supplier paperwork")
    retried = reports.exceptions_retry(ws)
    assert retried.posted == 2 and exceptions(ws) == {}
    # date order now: r00 1 @ 1.00 (Jan 5), r1 10 @ 5.00, r0 1 @ 1.00 (Feb 1), s2 ships 2 (s1 is
    # reversed): s2 = 1.00 + 5.00 = 6.00 (recost -4.00); on hand 9 x 5.00 + 1.00 = 46.00
    assert val(ws, "WIDGET-1@WH1") == (D("10"), D("46.00"))
    assert tb(ws)["5000"] == D("6.00")
    history = reports.period_list(ws)["history"]
    assert [h["action"] for h in history] == ["close", "reopen"]
    assert history[1]["reason"] == "late supplier paperwork"
    assert_reconciled_every_date(ws, [20260105, 20260110, 20260120, 20260201, 20260205])


def test_as_of_reports_do_not_change_when_later_dates_are_posted(make_workspace) -> None:
    ws = make_workspace()
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), ship("s1", "2026-01-05", "3"))
    before = (reports.trial_balance(ws, 20260105), reports.valuation(ws, 20260105),
              reports.reconcile(ws, 20260105))
    post(ws, rcv("r2", "2026-01-09", "10", "7.00"), ship("s2", "2026-01-10", "12"))
    after = (reports.trial_balance(ws, 20260105), reports.valuation(ws, 20260105),
             reports.reconcile(ws, 20260105))
    assert before == after


@pytest.mark.parametrize("method", ["fifo", "lifo", "average"])
def test_backdating_gives_the_date_ordered_result(make_workspace, method: str) -> None:
    setup = base_setup(categories=[{"code": "FG", "valuation": method, "cogs_on": "shipment"}])
    ws = make_workspace(setup)
    # arrival order: r2 (01-03, 5 @ 6.00), s1 (01-05, 10), then r1 backdated (01-02, 5 @ 4.00)
    post(ws, rcv("r2", "2026-01-03", "5", "6.00"), rcv("r3", "2026-01-04", "5", "5.00"))
    post(ws, ship("s1", "2026-01-05", "8"))
    post(ws, rcv("r1", "2026-01-02", "5", "4.00"))
    # date order: r1 5@4, r2 5@6, r3 5@5, s1 8:
    #   fifo 5x4 + 3x6 = 38.00; lifo 5x5 + 3x6 = 43.00; average 75.00/15 x 8 = 40.00
    fresh_expected = {"fifo": "38.00", "lifo": "43.00", "average": "40.00"}[method]
    assert tb(ws)["5000"] == D(fresh_expected)
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104, 20260105])


def test_documents_posted_before_a_replay_in_the_same_batch_still_count(make_workspace) -> None:
    setup = base_setup(products=base_setup()["products"] + [
        {"sku": "GADGET-2", "category": "FG", "uom": "EA"}])
    ws = make_workspace(setup)
    bill = {"id": "b1", "type": "vendor_bill", "date": "2026-01-04", "ref": "r1",
            "sku": "WIDGET-1", "qty": "10", "unit_cost": "5.00"}
    result = post(ws, rcv("r0", "2026-01-02", "5", "3.00", sku="GADGET-2"),
                  rcv("r1", "2026-01-03", "10", "5.00"), bill,
                  ship("s2", "2026-01-05", "1", sku="GADGET-2"),
                  {"id": "x2", "type": "reversal", "date": "2026-01-06", "ref": "s2"},
                  {**bill, "id": "b2"})  # r1 is fully billed: b2 is an over-billing
    assert exceptions(ws) == {"b2": "OVER_RETURN"}
    assert result.posted == 5
    assert tb(ws)["2000"] == D("-50.00")
