"""The small fixed ledger the export and KPI tests check by hand.

Base setup (tests/conftest.py): WIDGET-1, FIFO, COGS at shipment, location WH1;
1300 inventory, 2100 GRNI, 1200 AR, 4000 revenue, 5000 COGS, 5200 adjustments
(5210 for reason damage), 5400 applied overhead, 2000 AP.

    date        event  what                                   inventory 1300 after
    2026-01-02  r1     receipt 10 @ 5.00           +50.00      50.00
    2026-01-05  r2     receipt 10 @ 6.00           +60.00     110.00
    2026-01-10  s1     ship 15: 10@5 + 5@6 = 80.00 COGS        30.00 (5 @ 6.00)
    2026-01-12  i1     invoice 10 of s1 @ 10.00 = 100.00 revenue
    2026-01-20  c1     count 5: no variance                    30.00
    2026-02-03  r3     receipt 20 @ 7.00          +140.00     170.00
    2026-02-05  i3     invoice the other 5 of s1 @ 10.00 = 50.00 revenue
    2026-02-10  s2     ship 10: 5@6 + 5@7 = 65.00 COGS        105.00 (15 @ 7.00)
    2026-02-11  i2     invoice 10 of s2 @ 12.00 = 120.00 revenue
    2026-02-12  a1     damage -1: 7.00 to 5210                 98.00
    2026-02-15  c2     count 12 of 14: variance -2 = 14.00     84.00
    2026-02-20  c3     count 12: no variance                   84.00
    2026-02-21  a2     found +1 at current cost 7.00 (gain)    91.00
    2026-02-22  a3     damage -1: 7.00 ...                     84.00
    2026-02-23  rev1   ... reversed (mirror dated 02-22)       91.00
    2026-02-25  m1     manual entry: Dr 5400 10.00 / Cr 2000 10.00 (freight accrual)
"""

from __future__ import annotations

import json
from typing import Any

from stockledger.service.audit import add_manual_entry
from stockledger.service.ingest import parse_lines, post_events


def _ev(id_: str, type_: str, date: str, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "type": type_, "date": date, **fields}


W = {"location": "WH1", "sku": "WIDGET-1"}

EVENTS = [
    _ev("r1", "receipt", "2026-01-02", **W, qty="10", unit_cost="5.00"),
    _ev("r2", "receipt", "2026-01-05", **W, qty="10", unit_cost="6.00"),
    _ev("s1", "shipment", "2026-01-10", **W, qty="15"),
    _ev("i1", "customer_invoice", "2026-01-12", ref="s1", sku="WIDGET-1", qty="10",
        unit_price="10.00"),
    _ev("c1", "cycle_count", "2026-01-20", **W, qty="5"),
    _ev("r3", "receipt", "2026-02-03", **W, qty="20", unit_cost="7.00"),
    _ev("i3", "customer_invoice", "2026-02-05", ref="s1", sku="WIDGET-1", qty="5",
        unit_price="10.00"),
    _ev("s2", "shipment", "2026-02-10", **W, qty="10"),
    _ev("i2", "customer_invoice", "2026-02-11", ref="s2", sku="WIDGET-1", qty="10",
        unit_price="12.00"),
    _ev("a1", "adjustment", "2026-02-12", **W, qty="-1", reason="damage"),
    _ev("c2", "cycle_count", "2026-02-15", **W, qty="12"),
    _ev("c3", "cycle_count", "2026-02-20", **W, qty="12"),
    _ev("a2", "adjustment", "2026-02-21", **W, qty="1", reason="found"),
    _ev("a3", "adjustment", "2026-02-22", **W, qty="-1", reason="damage"),
    _ev("rev1", "reversal", "2026-02-23", ref="a3"),
]

MANUAL = {"id": "m1", "date": "2026-02-25", "reason": "freight accrual",
          "lines": [{"account": "5400", "debit": "10.00"}, {"account": "2000", "credit": "10.00"}]}


def build(ws: Any) -> Any:
    """Post the month's events and the manual entry; every event must post."""
    summary = post_events(ws, parse_lines([json.dumps(e) for e in EVENTS]), keep_results=True)
    failed = [(r.ext_id, r.code, r.message) for r in summary.results if r.status != "posted"]
    assert not failed, failed
    assert add_manual_entry(ws, MANUAL)["status"] == "posted"
    return ws
