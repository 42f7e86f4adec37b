"""A posting transaction works through its events in slices (reads, evaluation,
rows written, then the next slice): what a slice learns from the database must
combine with what earlier slices of the same transaction hold in memory.
Posted here with one event a slice, the smallest."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from stockledger.adapters.db import schema as s
from stockledger.service.bench import bench_setup, generate_stream
from stockledger.service.ingest import parse_lines, post_events
from tests.test_complex_operations import setup
from tests.test_time_and_corrections import entries, rcv, tb

D = Decimal


def post(ws: Any, *events: dict[str, Any], slice_size: int) -> dict[str, str]:
    summary = post_events(ws, parse_lines([json.dumps(e) for e in events]), keep_results=True,
                          slice_size=slice_size)
    return {r.ext_id: r.code or r.status for r in summary.results}


def bill(id_: str, date: str, ref: str, qty: str, cost: str) -> dict[str, Any]:
    return {"id": id_, "type": "vendor_bill", "date": date, "ref": ref, "sku": "WIDGET-1",
            "qty": qty, "unit_cost": cost}


@pytest.mark.parametrize("slice_size", [1, 2500])
def test_a_receipt_billed_in_two_slices_after_a_landed_cost(make_workspace,
                                                             slice_size: int) -> None:
    """A landed cost reads the receipt's documents without building its pool; a
    later slice must not read them a second time (the first bill would count twice
    and the second bill be refused as billing more than was received)."""
    ws = make_workspace(setup())
    assert post(ws, rcv("r1", "2026-01-02", "10", "5.00"), slice_size=1) == {"r1": "posted"}
    assert post(ws, bill("b1", "2026-01-03", "r1", "6", "5.00"), slice_size=1) == {"b1": "posted"}
    results = post(ws, {"id": "lc1", "type": "landed_cost", "date": "2026-01-04",
                        "refs": ["r1"], "amount": "2.00"},
                   bill("b2", "2026-01-05", "r1", "4", "5.50"), slice_size=slice_size)
    assert results == {"lc1": "posted", "b2": "posted"}
    # b2: GRNI 4 x 5.00 = 20.00 cleared, AP 22.00, the 2.00 difference to inventory
    assert entries(ws, "b2", "post") == {("2100", "debit"): D("20.00"),
                                         ("2000", "credit"): D("22.00"),
                                         ("1300", "debit"): D("2.00")}
    assert tb(ws)["2100"] == D("0.00")  # received 50.00, cleared 30.00 + 20.00


@pytest.mark.parametrize("slice_size", [1, 2500])
def test_an_order_completed_in_a_later_slice_than_a_refused_issue(make_workspace,
                                                                   slice_size: int) -> None:
    """An issue refused before it is evaluated (its period is closed) has read its
    order's events without building the order's WIP; the completion in a later
    slice must not read them again (the WIP would count twice)."""
    from stockledger.service.reports import period_close

    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"),
         {"id": "pi1", "type": "production_issue", "date": "2026-01-03", "location": "WH1",
          "order": "MO-1", "sku": "WIDGET-1", "qty": "2"}, slice_size=1)
    period_close(ws, "ACME", 20260103)
    results = post(ws, {"id": "pi2", "type": "production_issue", "date": "2026-01-03",
                        "location": "WH1", "order": "MO-1", "sku": "WIDGET-1", "qty": "1"},
                   {"id": "pf1", "type": "production_complete", "date": "2026-01-10",
                    "location": "WH1", "order": "MO-1", "sku": "CHAIR", "qty": "1"},
                   slice_size=slice_size)
    assert results == {"pi2": "PERIOD_CLOSED", "pf1": "posted"}
    # the order holds pi1 only: 2 x 5.00
    assert entries(ws, "pf1", "post") == {("1300", "debit"): D("10.00"),
                                          ("1400", "credit"): D("10.00")}
    assert tb(ws)["1400"] == D("0.00")


@pytest.mark.parametrize("slice_size", [7, 2500])
def test_movements_are_written_by_item_and_keep_posting_order_within_one(
        make_workspace, slice_size: int) -> None:
    """A flush writes its movements sorted by (sku, location) (decision 0015), a
    stable sort: one item's movements still follow posting order, which replays
    and the stock ledger read them in."""
    ws = make_workspace(bench_setup())
    lines = list(generate_stream(400, seed=3))
    summary = post_events(ws, parse_lines(lines), slice_size=slice_size)
    assert summary.posted > 390
    m = s.movements
    with ws.read() as conn:
        rows = conn.execute(select(m.c.id, m.c.event_id, m.c.sku_id, m.c.location_id)
                            .where(m.c.kind == "post").order_by(m.c.id)).all()
    assert len({(r.sku_id, r.location_id) for r in rows}) > 50
    last_event: dict[tuple[int, int], int] = {}
    for row in rows:
        key = (row.sku_id, row.location_id)
        assert row.event_id >= last_event.get(key, 0), key
        last_event[key] = row.event_id
