"""Document pools (SPEC 4 and 10, "documents that refer to others").

A receipt line's GRNI is cleared by bills pro rata; returns and vendor credits
come out of it by the same take rule. A shipment line's cost is split by
invoices (cogs_on: invoice) and taken back by sales returns.
"""

from __future__ import annotations

import pytest

from stockledger.domain.errors import ErrorCode, Rejection
from stockledger.domain.pools import ReceiptPool, ShipmentPool
from tests.unit.builders import m, q


def receipt(qty: str, grni: str) -> ReceiptPool:
    return ReceiptPool("receipt 'r1' line 1 WIDGET-1", q(qty), m(grni))


def shipment(qty: str, cost: str, *, on_invoice: bool) -> ShipmentPool:
    return ShipmentPool("shipment 's1' line 1 WIDGET-1", q(qty), m(cost), on_invoice)


def over_return(call, *args) -> Rejection:
    with pytest.raises(Rejection) as info:
        call(*args)
    assert info.value.code is ErrorCode.OVER_RETURN
    return info.value


# -- receipt pool: bills -----------------------------------------------------------------------


def test_bills_clear_grni_pro_rata_and_the_last_clears_the_rest() -> None:
    # received 10 for 50.00; bill 4 clears 50.00 x 4/10 = 20.00; bill 6 clears the rest 30.00
    pool = receipt("10", "50.00")
    assert pool.bill(q("4")) == m("20.00")
    assert pool.unbilled == [q("6"), m("30.00")]
    assert pool.bill(q("6")) == m("30.00")
    assert pool.unbilled == [0, 0] and pool.billed == [q("10"), m("50.00")]


def test_bills_in_thirds_leave_no_cent_in_grni() -> None:
    # received 3 for 10.00; bills of 1: 3.33, then 6.67 / 2 = 3.335 -> 3.34, then 3.33
    pool = receipt("3", "10.00")
    cleared = [pool.bill(q("1")) for _ in range(3)]
    assert cleared == [m("3.33"), m("3.34"), m("3.33")]
    assert sum(cleared) == m("10.00")


def test_billing_more_than_unbilled_is_over_return() -> None:
    # received 10, billed 7: a bill for 4 exceeds the 3 unbilled
    pool = receipt("10", "50.00")
    pool.bill(q("7"))
    error = over_return(pool.bill, q("4"))
    assert "3 of 10 unbilled" in error.message
    assert pool.unbilled == [q("3"), m("15.00")]  # nothing changed


# -- receipt pool: vendor credits and returns ----------------------------------------------------


def test_a_price_credit_puts_grni_back_from_the_billed_part() -> None:
    # received 10 for 50.00, billed all; credit 4 (no returns) -> 50.00 x 4/10 = 20.00 back
    # into the unbilled pool: unbilled 4 for 20.00, billed 6 for 30.00
    pool = receipt("10", "50.00")
    pool.bill(q("10"))
    assert pool.credit(q("4")) == (0, 0, q("4"), m("20.00"))
    assert pool.unbilled == [q("4"), m("20.00")] and pool.billed == [q("6"), m("30.00")]
    # crediting more than is billed (6) is OVER_RETURN
    over_return(pool.credit, q("7"))


def test_a_purchase_return_debits_grni_at_the_received_rate() -> None:
    # received 3 for 10.00; return 1 -> 3.33, return 1 -> 6.67 / 2 = 3.34, return 1 -> 3.33
    pool = receipt("3", "10.00")
    assert [pool.purchase_return(q("1")) for _ in range(3)] == [m("3.33"), m("3.34"), m("3.33")]
    assert pool.returnable == [0, 0]
    assert pool.returned_uncredited == [q("3"), m("10.00")]
    over_return(pool.purchase_return, q("0.5"))


def test_returning_more_than_received_is_over_return() -> None:
    # received 10, returned 4: returning 7 more exceeds the 6 not yet returned
    pool = receipt("10", "50.00")
    assert pool.purchase_return(q("4")) == m("20.00")
    error = over_return(pool.purchase_return, q("7"))
    assert "6 of 10" in error.message


def test_a_vendor_credit_first_covers_returned_units() -> None:
    # received 10 for 50.00, billed 10 (50.00), returned 2 (GRNI debited 50.00 x 2/10 = 10.00);
    # credit 5: 2 cover the return (GRNI back 10.00), the other 3 are a price credit:
    # billed is then 8 for 40.00, 40.00 x 3/8 = 15.00 goes back to unbilled
    pool = receipt("10", "50.00")
    pool.bill(q("10"))
    assert pool.purchase_return(q("2")) == m("10.00")
    assert pool.credit(q("5")) == (q("2"), m("10.00"), q("3"), m("15.00"))
    assert pool.returned_uncredited == [0, 0]
    assert pool.billed == [q("5"), m("25.00")]
    assert pool.unbilled == [q("3"), m("15.00")]


def test_receipt_pool_snapshot_restore() -> None:
    pool = receipt("10", "50.00")
    pool.bill(q("4"))
    snap = pool.snapshot()
    pool.bill(q("6"))
    pool.purchase_return(q("3"))
    pool.restore(snap)
    assert pool.unbilled == [q("6"), m("30.00")] and pool.billed == [q("4"), m("20.00")]
    assert pool.returnable == [q("10"), m("50.00")] and pool.returned_uncredited == [0, 0]


# -- shipment pool: cogs_on shipment ------------------------------------------------------------------


def test_cogs_on_shipment_invoices_move_no_cost_and_returns_take_pro_rata() -> None:
    # shipped 10 at cost 80.00; invoice 4 moves nothing (COGS was posted at shipment)
    pool = shipment("10", "80.00", on_invoice=False)
    assert pool.invoice(q("4")) == 0
    # sales return 3 -> out of COGS: 80.00 x 3/10 = 24.00; 7 for 56.00 left
    assert pool.sales_return(q("3")) == (0, m("24.00"))
    assert pool.uninvoiced == [q("7"), m("56.00")]
    # a credit note reverses AR/revenue only: no cost moves
    assert pool.invoice(-q("2")) == 0
    assert pool.invoiced_qty == q("2")
    # returning the 7 left takes exactly 56.00
    assert pool.sales_return(q("7")) == (0, m("56.00"))


def test_cogs_on_shipment_limits() -> None:
    # shipped 10, returned 3, invoiced 2: at most 10 - 3 - 2 = 5 more can be invoiced
    pool = shipment("10", "80.00", on_invoice=False)
    pool.sales_return(q("3"))
    pool.invoice(q("2"))
    over_return(pool.invoice, q("6"))
    pool.invoice(q("5"))
    # credit note beyond the 7 invoiced
    over_return(pool.invoice, -q("8"))
    # returns beyond what was shipped: 3 returned, 8 more would be 11 > 10
    over_return(pool.sales_return, q("8"))


# -- shipment pool: cogs_on invoice --------------------------------------------------------------------


def test_cogs_on_invoice_invoices_move_cost_from_gsni_to_cogs() -> None:
    # shipped 3 at 10.00 (all GSNI); invoice 1 moves 10.00 / 3 = 3.33; invoice 1 more moves
    # 6.67 / 2 = 3.335 -> 3.34; 1 left uninvoiced for 3.33
    pool = shipment("3", "10.00", on_invoice=True)
    assert pool.invoice(q("1")) == m("3.33")
    assert pool.invoice(q("1")) == m("3.34")
    assert pool.uninvoiced == [q("1"), m("3.33")]
    assert pool.invoiced == [q("2"), m("6.67")]
    # a credit note for 1 moves 6.67 / 2 = 3.335 -> 3.34 back (negative = back to GSNI)
    assert pool.invoice(-q("1")) == -m("3.34")
    assert pool.uninvoiced == [q("2"), m("6.67")] and pool.invoiced == [q("1"), m("3.33")]
    # invoicing more than the 2 uninvoiced is OVER_RETURN
    over_return(pool.invoice, q("3"))


def test_cogs_on_invoice_sales_return_takes_the_uninvoiced_part_first() -> None:
    # shipped 10 for 80.00, invoiced 8 (64.00 moved to COGS, 2 for 16.00 still GSNI);
    # return 3: 2 from GSNI (16.00, all of it) + 1 from COGS (64.00 / 8 = 8.00)
    pool = shipment("10", "80.00", on_invoice=True)
    assert pool.invoice(q("8")) == m("64.00")
    assert pool.sales_return(q("3")) == (m("16.00"), m("8.00"))
    assert pool.uninvoiced == [0, 0] and pool.invoiced == [q("7"), m("56.00")]
    # the credit note for the returned unit moves no cost (the goods are already back)
    assert pool.invoice(-q("1")) == 0
    # a further credit note for 1 moves 56.00 / 7 = 8.00 back to GSNI
    assert pool.invoice(-q("1")) == -m("8.00")
    assert pool.uninvoiced == [q("1"), m("8.00")]


def test_cogs_on_invoice_return_before_any_invoice_is_all_gsni() -> None:
    # shipped 4 for 10.00, nothing invoiced; return 1 -> 10.00 / 4 = 2.50 out of GSNI, 0 COGS
    pool = shipment("4", "10.00", on_invoice=True)
    assert pool.sales_return(q("1")) == (m("2.50"), 0)
    # then invoice the 3 left: all of the remaining 7.50 moves to COGS
    assert pool.invoice(q("3")) == m("7.50")
    over_return(pool.sales_return, q("4"))


def test_shipment_pool_snapshot_restore() -> None:
    pool = shipment("10", "80.00", on_invoice=True)
    pool.invoice(q("4"))
    snap = pool.snapshot()
    pool.sales_return(q("7"))
    pool.invoice(-q("2"))
    pool.restore(snap)
    assert pool.uninvoiced == [q("6"), m("48.00")] and pool.invoiced == [q("4"), m("32.00")]
    assert (pool.returned_qty, pool.invoiced_qty) == (0, q("4"))
