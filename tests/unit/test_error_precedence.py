"""SPEC 10: when an event has several problems, the first in this order is reported:
INVALID_EVENT -> UNKNOWN_LOCATION -> UNKNOWN_SKU -> UNKNOWN_UOM -> LOT_REQUIRED ->
references (UNKNOWN_REFERENCE, ALREADY_REVERSED, OVER_RETURN) -> UNMAPPED_ACCOUNT ->
PERIOD_CLOSED -> INSUFFICIENT_STOCK.

Each event below has at least two problems; the comment lists them, the first
in SPEC order is the expected code. Tested through post_events on a workspace."""

from __future__ import annotations

from typing import Any

import pytest

from stockledger.domain.errors import PRECEDENCE, ErrorCode
from stockledger.service.reports import period_close, reconcile
from tests.conftest import base_setup
from tests.unit.builders import balances, event, outcome, post, queue


def precedence_setup() -> dict[str, Any]:
    """WIDGET-1 (FIFO, fully mapped), RAW-1 (FIFO, no cogs or ppv account), LOTTED (specific)."""
    doc = base_setup()
    doc["roles"] = {k: v for k, v in doc["roles"].items() if k not in ("cogs", "ppv")}
    doc["mapping"] = doc["mapping"] + [
        {"role": "cogs", "category": "FG", "account": "5000"},
        {"role": "cogs", "category": "LOT", "account": "5000"},
        {"role": "ppv", "category": "FG", "account": "5100"},
        {"role": "ppv", "category": "LOT", "account": "5100"},
    ]
    doc["categories"] = [{"code": "FG", "valuation": "fifo"}, {"code": "RAW", "valuation": "fifo"},
                         {"code": "LOT", "valuation": "specific"}]
    doc["uoms"] = [{"code": "EA"}, {"code": "CS12", "base": "EA", "factor": "12"}, {"code": "KG"}]
    doc["products"] = [{"sku": "WIDGET-1", "category": "FG", "uom": "EA"},
                       {"sku": "RAW-1", "category": "RAW", "uom": "EA"},
                       {"sku": "LOTTED", "category": "LOT", "uom": "EA"}]
    return doc


HISTORY = [
    event("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="10", unit_cost="5.00"),
    event("rr", "receipt", "2026-01-02", location="WH1", sku="RAW-1", qty="10", unit_cost="5.00"),
    event("rl", "receipt", "2026-01-02", location="WH1", sku="LOTTED", qty="5", unit_cost="4.00",
          lot="L1"),
    event("s1", "shipment", "2026-01-03", location="WH1", sku="WIDGET-1", qty="2"),
    event("r2", "receipt", "2026-01-03", location="WH1", sku="WIDGET-1", qty="1", unit_cost="5.00"),
    event("rv1", "reversal", "2026-01-03", ref="r2"),
]
CLOSED_THROUGH = 20260110  # ACME is closed through 2026-01-10 before the cases are posted
OPEN, CLOSED = "2026-01-20", "2026-01-05"

CASES = [
    # -- INVALID_EVENT outranks everything -------------------------------------------------------
    # negative qty + unknown location + unknown SKU + closed date
    ("neg-qty", ErrorCode.INVALID_EVENT,
     event("neg-qty", "shipment", CLOSED, location="WH9", sku="NOPE", qty="-1")),
    # receipt without unit_cost + unknown location + unknown SKU
    ("no-cost", ErrorCode.INVALID_EVENT,
     event("no-cost", "receipt", OPEN, location="WH9", sku="NOPE", qty="1")),
    # negative unit cost + unknown SKU + unknown UOM
    ("neg-cost", ErrorCode.INVALID_EVENT,
     event("neg-cost", "receipt", OPEN, location="WH1", sku="NOPE", qty="1", uom="BOX",
           unit_cost="-1.00")),
    # no date + unknown location
    ("no-date", ErrorCode.INVALID_EVENT,
     event("no-date", "shipment", None, location="WH9", sku="WIDGET-1", qty="1")),
    # adjustment without reason + unknown SKU
    ("no-reason", ErrorCode.INVALID_EVENT,
     event("no-reason", "adjustment", OPEN, location="WH1", sku="NOPE", qty="-1")),
    # -- UNKNOWN_LOCATION before SKU, UOM, lot, stock ----------------------------------------------
    ("loc-sku", ErrorCode.UNKNOWN_LOCATION,
     event("loc-sku", "shipment", OPEN, location="WH9", sku="NOPE", qty="1", uom="BOX")),
    ("transfer-loc", ErrorCode.UNKNOWN_LOCATION,
     event("transfer-loc", "transfer", OPEN, from_="WH9", to="WH1", sku="NOPE", qty="1")),
    # sales return at an unknown location with an unknown ref
    ("return-loc", ErrorCode.UNKNOWN_LOCATION,
     event("return-loc", "sales_return", OPEN, location="WH9", ref="zzz", sku="WIDGET-1",
           qty="1")),
    # -- UNKNOWN_SKU before UOM (even when the UOM problem is on an earlier line) --------------------
    ("sku-uom", ErrorCode.UNKNOWN_SKU,
     event("sku-uom", "shipment", OPEN, location="WH1",
           lines=[{"sku": "WIDGET-1", "qty": "1", "uom": "BOX"}, {"sku": "NOPE", "qty": "1"}])),
    # unknown SKU on an invoice whose ref does not exist
    ("sku-ref", ErrorCode.UNKNOWN_SKU,
     event("sku-ref", "customer_invoice", OPEN, ref="zzz", sku="NOPE", qty="1", unit_price="9")),
    # -- UNKNOWN_UOM before LOT_REQUIRED ----------------------------------------------------------------
    # line 1 lacks a lot, line 2 has a UOM that does not convert (KG is not EA-based)
    ("uom-lot", ErrorCode.UNKNOWN_UOM,
     event("uom-lot", "shipment", OPEN, location="WH1",
           lines=[{"sku": "LOTTED", "qty": "1"}, {"sku": "WIDGET-1", "qty": "1", "uom": "KG"}])),
    # -- LOT_REQUIRED before references and stock ------------------------------------------------------
    ("lot-ref", ErrorCode.LOT_REQUIRED,
     event("lot-ref", "sales_return", OPEN, location="WH1", ref="zzz", sku="LOTTED", qty="1")),
    ("lot-stock", ErrorCode.LOT_REQUIRED,
     event("lot-stock", "shipment", CLOSED, location="WH1", sku="LOTTED", qty="1000")),
    # -- references before accounts, periods and stock --------------------------------------------------
    # unknown ref + RAW-1 has no ppv account
    ("ref-unmapped", ErrorCode.UNKNOWN_REFERENCE,
     event("ref-unmapped", "purchase_return", CLOSED, location="WH1", ref="zzz", sku="RAW-1",
           qty="1")),
    # returning 11 of 10 received + no ppv account + only 10 on hand
    ("over-unmapped", ErrorCode.OVER_RETURN,
     event("over-unmapped", "purchase_return", OPEN, location="WH1", ref="rr", sku="RAW-1",
           qty="11")),
    # invoicing 5 of a shipment of 2 + closed date
    ("over-closed", ErrorCode.OVER_RETURN,
     event("over-closed", "customer_invoice", CLOSED, ref="s1", sku="WIDGET-1", qty="5",
           unit_price="9.00")),
    # r2 was reversed already + its date is in the closed period
    ("again-closed", ErrorCode.ALREADY_REVERSED,
     event("again-closed", "reversal", "2026-01-03", ref="r2")),
    # -- UNMAPPED_ACCOUNT before PERIOD_CLOSED and INSUFFICIENT_STOCK ---------------------------------------
    # RAW-1's ppv is unmapped (even though this return's ppv amount is 0.00) + closed date
    ("unmapped-closed", ErrorCode.UNMAPPED_ACCOUNT,
     event("unmapped-closed", "purchase_return", CLOSED, location="WH1", ref="rr", sku="RAW-1",
           qty="1")),
    # RAW-1's cogs is unmapped + 1000 is far more than on hand
    ("unmapped-stock", ErrorCode.UNMAPPED_ACCOUNT,
     event("unmapped-stock", "shipment", OPEN, location="WH1", sku="RAW-1", qty="1000")),
    # -- PERIOD_CLOSED before INSUFFICIENT_STOCK --------------------------------------------------------------
    ("closed-stock", ErrorCode.PERIOD_CLOSED,
     event("closed-stock", "shipment", CLOSED, location="WH1", sku="WIDGET-1", qty="1000")),
    # -- and INSUFFICIENT_STOCK alone --------------------------------------------------------------------------
    ("stock", ErrorCode.INSUFFICIENT_STOCK,
     event("stock", "shipment", OPEN, location="WH1", sku="WIDGET-1", qty="1000")),
]


def test_precedence_table_matches_the_spec() -> None:
    assert [c.value for c in PRECEDENCE] == [
        "INVALID_EVENT", "UNKNOWN_LOCATION", "UNKNOWN_SKU", "UNKNOWN_UOM", "LOT_REQUIRED",
        "UNKNOWN_REFERENCE", "ALREADY_REVERSED", "OVER_RETURN", "UNMAPPED_ACCOUNT",
        "PERIOD_CLOSED", "INSUFFICIENT_STOCK"]


@pytest.fixture
def ws(make_workspace):
    ws = make_workspace(precedence_setup())
    summary = post(ws, *HISTORY)
    assert outcome(summary) == {key: "posted" for key in ("r1", "rr", "rl", "s1", "r2", "rv1")}
    period_close(ws, "ACME", CLOSED_THROUGH)
    return ws


def test_the_first_problem_in_spec_order_is_reported(ws) -> None:
    # before: r1 10 @ 5.00 + rr 10 @ 5.00 + rl 5 @ 4.00 = 120.00 received; s1 shipped 2 @ 5.00
    before = balances(ws)
    assert before == {"1300": "110.00", "2100": "-120.00", "5000": "10.00"}
    summary = post(ws, *(line for _, _, line in CASES))
    got = outcome(summary)
    wanted = {key: code.value for key, code, _ in CASES}
    wrong = {key: f"wanted {wanted[key]}, got {got.get(key)}" for key in wanted
             if got.get(key) != wanted[key]}
    assert not wrong, wrong
    # every one of them is queued with that code, and nothing of any of them is posted
    assert queue(ws) == wanted
    assert summary.posted == 0
    assert balances(ws) == before
    assert reconcile(ws)["status"] == "balanced"


def test_each_case_in_its_own_batch(ws) -> None:
    """The same, one event per transaction (no help from batch neighbours)."""
    summary = post(ws, *(line for _, _, line in CASES), batch_size=1)
    assert outcome(summary) == {key: code.value for key, code, _ in CASES}
    assert summary.posted == 0
