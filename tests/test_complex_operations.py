"""Issue 5 worked cases: kits, bundles, production, landed cost, intercompany
transfers, standard-cost updates, write-downs, and replays through them.
Figures are computed by hand in the comments."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stockledger.service import reports
from tests.conftest import base_setup
from tests.test_time_and_corrections import (
    assert_reconciled_every_date,
    entries,
    exceptions,
    post,
    rcv,
    ship,
    tb,
    val,
)

D = Decimal

PRODUCTS = [
    {"sku": "WIDGET-1", "category": "FG", "uom": "EA"},
    {"sku": "BOLT-2", "category": "FG", "uom": "EA"},
    {"sku": "KIT-A", "category": "FG", "uom": "EA", "kind": "kit",
     "components": [{"sku": "WIDGET-1", "qty": 2}, {"sku": "BOLT-2", "qty": 4}]},
    {"sku": "GIFT-B", "category": "FG", "uom": "EA", "kind": "bundle",
     "components": [{"sku": "WIDGET-1", "qty": 1}, {"sku": "BOLT-2", "qty": 2}]},
    {"sku": "STD-1", "category": "STD", "uom": "EA", "standard_cost": "5.00"},
    {"sku": "CHAIR", "category": "FG", "uom": "EA"},
]
CATEGORIES = [{"code": "FG", "valuation": "fifo", "cogs_on": "shipment"},
              {"code": "STD", "valuation": "standard", "cogs_on": "shipment"}]


def setup(**more: Any) -> dict[str, Any]:
    return base_setup(products=PRODUCTS, categories=CATEGORIES, **more)


def test_assembly_and_disassembly(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), rcv("r2", "2026-01-02", "20", "1.00", sku="BOLT-2"),
         {"id": "k1", "type": "assembly", "date": "2026-01-03", "location": "WH1",
          "sku": "KIT-A", "qty": "2", "extra_cost": "3.00"})
    # 2 kits: 4 widgets x 5.00 = 20.00 + 8 bolts x 1.00 = 8.00 + 3.00 overhead = 31.00
    assert entries(ws, "k1", "post") == {("1300", "debit"): D("31.00"),
                                         ("1300", "credit"): D("28.00"),
                                         ("5400", "credit"): D("3.00")}
    assert val(ws, "KIT-A@WH1") == (D("2"), D("31.00"))
    post(ws, {"id": "d1", "type": "disassembly", "date": "2026-01-04", "location": "WH1",
              "sku": "KIT-A", "qty": "1"})
    # one kit out at 15.50; weights at current cost: 2 widgets x 5.00 = 10.00, 4 bolts x 1.00 =
    # 4.00; widgets get round(15.50 x 10/14) = 11.07, bolts the rest 4.43
    assert val(ws, "WIDGET-1@WH1") == (D("8"), D("41.07"))
    assert val(ws, "BOLT-2@WH1") == (D("16"), D("16.43"))
    assert val(ws, "KIT-A@WH1") == (D("1"), D("15.50"))
    assert tb(ws)["5400"] == D("-3.00")
    # a kit needs its components on hand
    post(ws, {"id": "k2", "type": "assembly", "date": "2026-01-05", "location": "WH1",
              "sku": "KIT-A", "qty": "5"})
    assert exceptions(ws) == {"k2": "INSUFFICIENT_STOCK"}
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104])


def test_bundle_ships_invoices_and_returns_components(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), rcv("r2", "2026-01-02", "10", "1.50", sku="BOLT-2"),
         ship("s1", "2026-01-03", "3", sku="GIFT-B"),
         {"id": "i1", "type": "customer_invoice", "date": "2026-01-04", "ref": "s1",
          "sku": "GIFT-B", "qty": "3", "unit_price": "12.00"},
         {"id": "sr1", "type": "sales_return", "date": "2026-01-05", "ref": "s1",
          "sku": "GIFT-B", "qty": "1"})
    # s1 ships 3 widgets (15.00) and 6 bolts (9.00): COGS 24.00 on the components
    assert entries(ws, "s1", "post") == {("5000", "debit"): D("24.00"), ("1300", "credit"): D("24.00")}
    # the invoice bills the bundle: 3 x 12.00
    assert entries(ws, "i1", "post") == {("1200", "debit"): D("36.00"), ("4000", "credit"): D("36.00")}
    revenue = [line for e in reports.journal(ws, event="i1") for line in e["lines"]
               if line["account"] == "4000"]
    assert {line["sku"] for line in revenue} == {"GIFT-B"}
    # one bundle back: 1 widget at 5.00 and 2 bolts at 3.00, the shipment's own cost
    assert entries(ws, "sr1", "post") == {("1300", "debit"): D("8.00"), ("5000", "credit"): D("8.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("8"), D("40.00"))
    assert val(ws, "BOLT-2@WH1") == (D("6"), D("9.00"))
    assert tb(ws)["5000"] == D("16.00")


def test_production_order(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"), rcv("r2", "2026-01-02", "20", "1.00", sku="BOLT-2"),
         {"id": "pi1", "type": "production_issue", "date": "2026-01-03", "location": "WH1",
          "order": "MO-1", "lines": [{"sku": "WIDGET-1", "qty": "4"}, {"sku": "BOLT-2", "qty": "8"}]},
         {"id": "pc1", "type": "production_cost", "date": "2026-01-04", "location": "WH1",
          "order": "MO-1", "amount": "12.50"})
    # WIP: 4 x 5.00 + 8 x 1.00 + 12.50 labour = 40.50
    assert tb(ws)["1400"] == D("40.50")
    wip = reports.wip_report(ws)
    assert [(o["order"], o["wip"]) for o in wip["orders"]] == [("MO-1", "40.50")]
    assert wip["gl"] == "40.50" and wip["status"] == "balanced"
    post(ws, {"id": "pf1", "type": "production_complete", "date": "2026-01-05", "location": "WH1",
              "order": "MO-1", "sku": "CHAIR", "qty": "2"},
         {"id": "pf2", "type": "production_complete", "date": "2026-01-06", "location": "WH1",
          "order": "MO-1", "sku": "CHAIR", "qty": "1"},
         {"id": "pf3", "type": "production_complete", "date": "2026-01-06", "location": "WH1",
          "order": "MO-2", "sku": "CHAIR", "qty": "1"})
    assert entries(ws, "pf1", "post") == {("1300", "debit"): D("40.50"), ("1400", "credit"): D("40.50")}
    assert val(ws, "CHAIR@WH1") == (D("2"), D("40.50"))
    assert tb(ws)["1400"] == D("0.00")
    assert exceptions(ws) == {"pf2": "INVALID_EVENT", "pf3": "INVALID_EVENT"}
    assert reports.wip_report(ws)["orders"] == []
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104, 20260105])


def test_backdated_receipt_recosts_kits_and_production(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-10", "10", "5.00"), rcv("r2", "2026-01-10", "20", "1.00", sku="BOLT-2"),
         {"id": "k1", "type": "assembly", "date": "2026-01-11", "location": "WH1",
          "sku": "KIT-A", "qty": "1"},
         ship("sk", "2026-01-12", "1", sku="KIT-A"),
         {"id": "pi1", "type": "production_issue", "date": "2026-01-13", "location": "WH1",
          "order": "MO-1", "sku": "WIDGET-1", "qty": "2"},
         {"id": "pf1", "type": "production_complete", "date": "2026-01-14", "location": "WH1",
          "order": "MO-1", "sku": "CHAIR", "qty": "1"},
         ship("sc", "2026-01-15", "1", sku="CHAIR"))
    # kit: 2 widgets x 5.00 + 4 bolts x 1.00 = 14.00; chair: 2 widgets x 5.00 = 10.00
    assert tb(ws)["5000"] == D("24.00")
    # a widget receipt of 3 @ 2.00 dated before everything: k1 takes 2 x 2.00 (kit 8.00, -6.00);
    # pi1 takes 1 x 2.00 + 1 x 5.00 = 7.00 (-3.00); the chair and both shipments follow
    result = post(ws, rcv("r0", "2026-01-05", "3", "2.00"))
    assert result.posted == 1
    assert entries(ws, "sk", "recost") == {("1300", "debit"): D("6.00"), ("5000", "credit"): D("6.00")}
    assert entries(ws, "sc", "recost") == {("1300", "debit"): D("3.00"), ("5000", "credit"): D("3.00")}
    assert tb(ws)["5000"] == D("15.00")
    assert tb(ws)["1400"] == D("0.00")
    assert_reconciled_every_date(ws, [20260105, 20260110, 20260111, 20260112, 20260113,
                                      20260114, 20260115])


def test_landed_cost(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"),
         {"id": "r2", "type": "receipt", "date": "2026-01-02", "location": "WH1",
          "lines": [{"sku": "BOLT-2", "qty": "20", "unit_cost": "1.00"},
                    {"sku": "STD-1", "qty": "4", "unit_cost": "5.00"}]},
         ship("s1", "2026-01-03", "5"),
         {"id": "lc1", "type": "landed_cost", "date": "2026-01-04", "refs": ["r1", "r2"],
          "amount": "10.00", "allocate": "value"},
         {"id": "lc2", "type": "landed_cost", "date": "2026-01-04", "refs": ["r9"],
          "amount": "1.00"})
    # weights by received value: 50.00, 20.00, 20.00 -> 10.00 x 50/90 = 5.56; 4.44 x 20/40 = 2.22;
    # the last 2.22. WIDGET-1: half consumed -> 2.78 inventory, 2.78 COGS; BOLT-2 all on hand
    # -> 2.22 inventory; STD-1 (standard) -> 2.22 PPV
    assert entries(ws, "lc1", "post") == {("1300", "debit"): D("5.00"),
                                          ("5000", "debit"): D("2.78"),
                                          ("5100", "debit"): D("2.22"),
                                          ("2200", "credit"): D("10.00")}
    assert val(ws, "WIDGET-1@WH1") == (D("5"), D("27.78"))
    assert val(ws, "BOLT-2@WH1") == (D("20"), D("22.22"))
    assert exceptions(ws) == {"lc2": "UNKNOWN_REFERENCE"}
    # by quantity: 2 receipts lines 10 and 20 -> 3.00 x 10/30 = 1.00, the rest 2.00
    post(ws, {"id": "lc3", "type": "landed_cost", "date": "2026-01-05", "refs": ["r1"],
              "amount": "3.00", "allocate": "qty"})
    assert entries(ws, "lc3", "post") == {("1300", "debit"): D("1.50"), ("5000", "debit"): D("1.50"),
                                          ("2200", "credit"): D("3.00")}
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104, 20260105])


def test_transfer_between_entities(make_workspace) -> None:
    ws = make_workspace(setup(
        entities=[{"code": "ACME", "currency": "USD"}, {"code": "SUB", "currency": "USD"}],
        locations=[{"code": "WH1", "entity": "ACME"}, {"code": "EU1", "entity": "SUB"}]))
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"),
         {"id": "t1", "type": "transfer", "date": "2026-01-03", "from": "WH1", "to": "EU1",
          "sku": "WIDGET-1", "qty": "4", "unit_price": "6.00"},
         {"id": "t2", "type": "transfer", "date": "2026-01-04", "from": "WH1", "to": "EU1",
          "sku": "WIDGET-1", "qty": "2"})
    # sender: IC receivable 24.00, inventory -20.00, IC gain -4.00; receiver: inventory 24.00,
    # IC payable -24.00. t2 without a price moves at cost: 10.00 each side, no gain
    acme, sub = tb_entity(ws, "ACME"), tb_entity(ws, "SUB")
    assert acme["1500"] == D("34.00") and acme["4900"] == D("-4.00") and acme["1300"] == D("20.00")
    assert sub["1300"] == D("34.00") and sub["2500"] == D("-34.00")
    assert sum(acme.values()) == 0 and sum(sub.values()) == 0
    assert val(ws, "WIDGET-1@EU1") == (D("6"), D("34.00"))
    t1 = {e["date"]: e for e in reports.journal(ws, event="t1")}
    assert len(reports.journal(ws, event="t1")) == 2  # one entry per entity
    assert reports.reconcile(ws, entity_code="ACME")["status"] == "balanced"
    assert reports.reconcile(ws, entity_code="SUB")["status"] == "balanced"
    assert t1


def tb_entity(ws: Any, entity: str) -> dict[str, Decimal]:
    return {a["code"]: D(a["balance"])
            for a in reports.trial_balance(ws, None, entity)["accounts"]}


def test_cost_update_and_revaluation(make_workspace) -> None:
    ws = make_workspace(setup())
    post(ws, rcv("r1", "2026-01-02", "10", "5.20", sku="STD-1"),
         rcv("r2", "2026-01-02", "10", "4.00"),
         {"id": "cu1", "type": "cost_update", "date": "2026-01-03", "location": "WH1",
          "sku": "STD-1", "unit_cost": "5.50"},
         rcv("r3", "2026-01-04", "2", "5.60", sku="STD-1"),
         {"id": "cu2", "type": "cost_update", "date": "2026-01-05", "location": "WH1",
          "sku": "WIDGET-1", "unit_cost": "4.00"},
         {"id": "rv1", "type": "revaluation", "date": "2026-01-06", "location": "WH1",
          "sku": "WIDGET-1", "unit_cost": "3.25"},
         {"id": "rv2", "type": "revaluation", "date": "2026-01-07", "location": "WH1",
          "sku": "WIDGET-1", "unit_cost": "9.00"},
         {"id": "rv3", "type": "revaluation", "date": "2026-01-07", "location": "WH1",
          "sku": "STD-1", "unit_cost": "1.00"})
    # cu1: (5.50 - 5.00) x 10 = 5.00 up; r3 enters at the new standard 2 x 5.50 = 11.00
    assert entries(ws, "cu1", "post") == {("1300", "debit"): D("5.00"), ("5300", "credit"): D("5.00")}
    assert val(ws, "STD-1@WH1") == (D("12"), D("66.00"))
    assert entries(ws, "r3", "post")[("5100", "debit")] == D("0.20")  # 11.20 actual - 11.00
    # rv1 writes 10 widgets down from 4.00 to 3.25: 7.50
    assert entries(ws, "rv1", "post") == {("5300", "debit"): D("7.50"), ("1300", "credit"): D("7.50")}
    assert val(ws, "WIDGET-1@WH1") == (D("10"), D("32.50"))
    assert exceptions(ws) == {"cu2": "INVALID_EVENT", "rv2": "INVALID_EVENT", "rv3": "INVALID_EVENT"}
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104, 20260106])


def test_landed_cost_follows_goods_moved_by_transfer(make_workspace) -> None:
    ws = make_workspace(setup(
        locations=[{"code": "WH1", "entity": "ACME"}, {"code": "WH2", "entity": "ACME"}],
        mapping=base_setup()["mapping"] + [{"role": "inventory", "location": "WH2",
                                            "account": "1320"}]))
    post(ws, rcv("r1", "2026-01-02", "10", "5.00"),
         {"id": "t1", "type": "transfer", "date": "2026-01-03", "from": "WH1", "to": "WH2",
          "sku": "WIDGET-1", "qty": "4"},
         {"id": "t2", "type": "transfer", "date": "2026-01-04", "from": "WH2", "to": "WH1",
          "sku": "WIDGET-1", "qty": "1"},
         ship("s1", "2026-01-05", "2"),
         {"id": "lc1", "type": "landed_cost", "date": "2026-01-06", "refs": ["r1"],
          "amount": "10.00"})
    # of r1's 10: 4 left at WH1 in r1's own layer, 3 at WH2 (came by t1), 1 back at WH1 (t2),
    # 2 shipped. On hand 8 of 10 -> 8.00 to inventory (4.00 + 3.00 + 1.00), 2.00 to COGS
    assert entries(ws, "lc1", "post") == {("1300", "debit"): D("5.00"), ("1320", "debit"): D("3.00"),
                                          ("5000", "debit"): D("2.00"), ("2200", "credit"): D("10.00")}
    assert val(ws, "WIDGET-1@WH2") == (D("3"), D("18.00"))
    assert val(ws, "WIDGET-1@WH1") == (D("5"), D("30.00"))
    # a backdated shipment at WH2 before the landed cost re-splits it: 2 fewer on hand there
    post(ws, ship("s2", "2026-01-05", "2", loc="WH2"))
    assert entries(ws, "lc1", "recost") == {("5000", "debit"): D("2.00"), ("1320", "credit"): D("2.00")}
    assert_reconciled_every_date(ws, [20260102, 20260103, 20260104, 20260105, 20260106])
