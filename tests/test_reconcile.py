"""Reconciliation drill-down (issue 6): differences explained by items that trace
to an entry and an event; breakdown by location and by category.

The dataset (figures by hand):
  r1  WIDGET-1 (FG, fifo)  10 @ 5.00 into WH1 (1300)      -> 1300 +50.00
  r2  BOLT-1   (RAW, avg)  20 @ 1.25 into WH2 (1320)      -> 1320 +25.00
  t1  WIDGET-1 4 WH1 -> WH3, both on 1300: no entry (SPEC 4), subledger WH1 -20.00, WH3 +20.00
  t2  WIDGET-1 2 WH1 -> WH2, 1300 -> 1320: 1320 +10.00 / 1300 -10.00
  s1  BOLT-1   8 from WH2 at 1.25 = 10.00                 -> 1320 -10.00
Subledger: 1300 = 50 - 10 = 40.00 (WH1 20.00, WH3 20.00); 1320 = 25 + 10 - 10 = 25.00
(WH2: WIDGET 10.00 + BOLT 15.00).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update

from stockledger.adapters.db import schema as s
from stockledger.service import reports
from stockledger.service.audit import add_manual_entry
from stockledger.service.ingest import parse_lines, post_events
from tests.conftest import SCENARIOS


def setup() -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load(
        (SCENARIOS / "08-transfer-between-location-accounts.yaml").read_text())["setup"])
    doc["categories"].append({"code": "RAW", "valuation": "average", "cogs_on": "shipment"})
    doc["products"].append({"sku": "BOLT-1", "category": "RAW", "uom": "EA"})
    doc["locations"].append({"code": "WH3", "entity": "ACME"})
    return doc


EVENTS = [
    {"id": "r1", "type": "receipt", "date": "2026-01-02", "location": "WH1", "sku": "WIDGET-1",
     "qty": "10", "unit_cost": "5.00"},
    {"id": "r2", "type": "receipt", "date": "2026-01-02", "location": "WH2", "sku": "BOLT-1",
     "qty": "20", "unit_cost": "1.25"},
    {"id": "t1", "type": "transfer", "date": "2026-01-03", "from": "WH1", "to": "WH3",
     "sku": "WIDGET-1", "qty": "4"},
    {"id": "t2", "type": "transfer", "date": "2026-01-04", "from": "WH1", "to": "WH2",
     "sku": "WIDGET-1", "qty": "2"},
    {"id": "s1", "type": "shipment", "date": "2026-01-05", "location": "WH2", "sku": "BOLT-1",
     "qty": "8"},
]


def posted(make_workspace: Any) -> Any:
    ws = make_workspace(setup())
    result = post_events(ws, parse_lines([json.dumps(e) for e in EVENTS]))
    assert result.posted == len(EVENTS)
    return ws


def by_account(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["account"]: row for row in report["accounts"]}


def test_balanced_with_breakdown_by_location_and_category(make_workspace: Any) -> None:
    ws = posted(make_workspace)
    report = reports.reconcile(ws, by="location")
    assert report["status"] == "balanced" and report["items"] == []
    rows = by_account(report)
    assert (rows["1300"]["subledger"], rows["1300"]["gl"]) == ("40.00", "40.00")
    assert (rows["1320"]["subledger"], rows["1320"]["gl"]) == ("25.00", "25.00")
    # WH1: +50 - 20 (t1, no entry) - 10 (t2); its GL lines say +50 - 10 = 40, the
    # same-account transfer attributes the other -20 to WH1 and +20 to WH3
    wh = {p["location"]: p for p in rows["1300"]["by_location"]}
    assert wh["WH1"] == {"location": "WH1", "subledger": "20.00", "gl": "20.00",
                         "difference": "0.00", "gl_lines": "40.00",
                         "transfers_without_entry": "-20.00"}
    assert (wh["WH3"]["gl_lines"], wh["WH3"]["transfers_without_entry"]) == ("0.00", "20.00")
    cat = {p["category"]: p for p in by_account(reports.reconcile(ws, by="category"))["1320"]["by_category"]}
    # 1320: WIDGET (FG) 2 @ 5.00 = 10.00; BOLT (RAW) 12 @ 1.25 = 15.00
    assert (cat["FG"]["subledger"], cat["FG"]["gl"]) == ("10.00", "10.00")
    assert (cat["RAW"]["subledger"], cat["RAW"]["gl"]) == ("15.00", "15.00")
    # as of the day before t2: 1320 holds only BOLT 25.00
    early = by_account(reports.reconcile(ws, 20260103, by="category"))
    assert [(p["category"], p["gl"]) for p in early["1320"]["by_category"]] == [("RAW", "25.00")]


def test_a_manual_journal_on_inventory_is_found_and_explained(make_workspace: Any,
                                                              tmp_path: Path) -> None:
    ws = posted(make_workspace)
    # a hand-made write-up of 7.50 on 1300 against adjustments, allowed with a reason
    add_manual_entry(ws, {"id": "mj-1", "date": "2026-01-06", "entity": "ACME",
                          "reason": "found pallet", "lines": [
                              {"account": "1300", "debit": "7.50"},
                              {"account": "5200", "credit": "7.50"}]},
                     allow_control_account=True, control_reason="auditor asked for it")
    report = reports.reconcile(ws, by="location")
    assert report["status"] == "differences"
    row = by_account(report)["1300"]
    # subledger 40.00, GL 47.50: difference -7.50, all of it explained by the manual line
    assert (row["subledger"], row["gl"], row["difference"]) == ("40.00", "47.50", "-7.50")
    assert (row["explained"], row["unexplained"]) == ("-7.50", "0.00")
    # the manual line has no location: its own row in the breakdown
    none = [p for p in row["by_location"] if p["location"] == "(none)"]
    assert none and none[0]["gl"] == "7.50" and none[0]["difference"] == "-7.50"
    [item] = report["items"]
    assert item["kind"] == "manual_journal" and item["account"] == "1300"
    assert item["event"] == {"source": "manual", "id": "mj-1"}
    assert (item["amount"], item["effect_on_difference"], item["date"]) == ("7.50", "-7.50",
                                                                           "2026-01-06")
    assert "found pallet" in item["note"] and "auditor asked for it" in item["note"]
    assert isinstance(item["entry"], int)
    # before the manual entry's date the books agree
    assert reports.reconcile(ws, 20260105)["status"] == "balanced"


def test_a_row_altered_in_the_database_is_named(make_workspace: Any) -> None:
    ws = posted(make_workspace)
    # deep mode (event by event) on clean books finds nothing
    assert reports.reconcile(ws, deep=True)["items"] == []
    with ws.write() as conn:
        event_id = conn.execute(s.events.select().where(s.events.c.ext_id == "s1")).one().id
        conn.execute(update(s.journal_lines)
                     .where(s.journal_lines.c.event_id == event_id,
                            s.journal_lines.c.amount_minor == -1000)
                     .values(amount_minor=-1001))
    report = reports.reconcile(ws)
    row = by_account(report)["1320"]
    # GL 1320 is now 25.00 - 0.01; the subledger still 25.00: difference +0.01
    assert (row["difference"], row["explained"], row["unexplained"]) == ("0.01", "0.01", "0.00")
    [item] = report["items"]
    assert item["kind"] == "unmatched_event" and item["event"]["id"] == "s1"
    assert item["amount"] == "-0.01" and item["date"] == "2026-01-05"
