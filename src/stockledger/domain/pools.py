"""Running totals of a document that others refer to (SPEC 10, "documents").

Problem: a receipt is billed, returned and credited in pieces, a shipment is
invoiced, credited and returned in pieces, and each piece must clear exactly
its share of what the original posted, so that GRNI and GSNI go to zero when a
document is fully matched. Each piece takes its share with the take rule from
a (qty, value) pair; the last piece takes exactly what is left.

A pool is a pure fold over the base document and the documents that refer to
it, in (date, arrival) order: it never depends on stock, so it can be rebuilt
at any point of history.
"""

from __future__ import annotations

from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.events import ymd_text
from stockledger.domain.money import format_qty, take_share


def _take(pair: list[int], qty: int) -> int:
    """Take qty from a [qty, value] pair; returns the value taken."""
    if qty > pair[0]:
        raise InvariantViolation(f"take of {qty} from a pool of {pair[0]}")
    value = take_share(pair[1], qty, pair[0]) if qty else 0
    pair[0] -= qty
    pair[1] -= value
    return value


def _over(message: str) -> Rejection:
    return Rejection(ErrorCode.OVER_RETURN, message)


class ReceiptPool:
    """One receipt line: what GRNI credited, what bills cleared, what went back."""

    __slots__ = ("name", "received_qty", "received_value", "unbilled", "billed", "returnable",
                 "returned_uncredited")

    def __init__(self, name: str, qty: int, grni_value: int) -> None:
        self.name = name
        self.received_qty = qty
        self.received_value = grni_value
        self.unbilled = [qty, grni_value]  # the GRNI pool bills clear
        self.billed = [0, 0]  # GRNI cleared by bills, net of price credits
        self.returnable = [qty, grni_value]  # received less returned
        self.returned_uncredited = [0, 0]  # GRNI debited by returns a credit has not covered

    def check_bill(self, qty: int) -> None:
        if qty > 0 and qty > self.unbilled[0]:
            raise _over(f"billing {format_qty(qty)} of {self.name}, which has "
                        f"{format_qty(self.unbilled[0])} of {format_qty(self.received_qty)} unbilled")
        if qty < 0 and -qty > self.billed[0]:
            raise _over(f"crediting {format_qty(-qty)} of {self.name}, which has "
                        f"{format_qty(self.billed[0])} billed")

    def check_return(self, qty: int) -> None:
        if qty > self.returnable[0]:
            raise _over(f"returning {format_qty(qty)} of {self.name}, which has "
                        f"{format_qty(self.returnable[0])} of {format_qty(self.received_qty)} "
                        f"not yet returned")

    def bill(self, qty: int) -> int:
        """A bill for qty units: the GRNI it clears."""
        self.check_bill(qty)
        cleared = _take(self.unbilled, qty)
        self.billed[0] += qty
        self.billed[1] += cleared
        return cleared

    def credit(self, qty: int) -> tuple[int, int, int, int]:
        """A vendor credit for qty units.

        Returns (qty covering returns, GRNI those returns debited, qty of price
        credit, GRNI put back into the unbilled pool).
        """
        self.check_bill(-qty)
        covered = min(qty, self.returned_uncredited[0])
        grni_returned = _take(self.returned_uncredited, covered)
        if covered:
            _take(self.billed, covered)  # those units are settled: billed, returned, credited
        rest = qty - covered
        put_back = _take(self.billed, rest)
        self.unbilled[0] += rest
        self.unbilled[1] += put_back
        return covered, grni_returned, rest, put_back

    def purchase_return(self, qty: int) -> int:
        """Goods sent back: the GRNI debit, at the receipt's received rate."""
        self.check_return(qty)
        grni = _take(self.returnable, qty)
        self.returned_uncredited[0] += qty
        self.returned_uncredited[1] += grni
        return grni

    def snapshot(self) -> tuple:
        return (tuple(self.unbilled), tuple(self.billed), tuple(self.returnable),
                tuple(self.returned_uncredited))

    def restore(self, snap: tuple) -> None:
        self.unbilled, self.billed, self.returnable, self.returned_uncredited = (
            list(pair) for pair in snap)


class ShipmentPool:
    """One shipped part (an item, or one component of a bundle) and its cost.

    Under ``cogs_on: shipment`` the cost is one pool that sales returns take
    from pro rata; invoices only count quantities. Under ``cogs_on: invoice``
    the cost is split into an uninvoiced part (GSNI) and an invoiced part
    (COGS): invoices move cost from the first to the second, credit notes move
    it back, sales returns take the uninvoiced part first.
    """

    __slots__ = ("name", "shipped_qty", "on_invoice", "uninvoiced", "invoiced",
                 "returned_qty", "returned_uncredited_qty", "invoiced_qty")

    def __init__(self, name: str, qty: int, cost: int, on_invoice: bool) -> None:
        self.name = name
        self.shipped_qty = qty
        self.on_invoice = on_invoice
        self.uninvoiced = [qty, cost]  # cogs_on shipment: everything not yet returned
        self.invoiced = [0, 0]
        self.returned_qty = 0
        self.returned_uncredited_qty = 0  # returned out of the invoiced part, not yet credited
        self.invoiced_qty = 0  # invoiced net of credit notes

    def check_invoice(self, qty: int) -> None:
        open_qty = self.shipped_qty - self.returned_qty - self.invoiced_qty
        if self.on_invoice:
            open_qty = self.uninvoiced[0]
        if qty > 0 and qty > open_qty:
            raise _over(f"invoicing {format_qty(qty)} of {self.name}: shipped "
                        f"{format_qty(self.shipped_qty)}, returned {format_qty(self.returned_qty)}, "
                        f"invoiced {format_qty(self.invoiced_qty)}")
        if qty < 0 and -qty > self.invoiced_qty:
            raise _over(f"crediting {format_qty(-qty)} of {self.name}, which has "
                        f"{format_qty(self.invoiced_qty)} invoiced")

    def check_return(self, qty: int) -> None:
        if self.returned_qty + qty > self.shipped_qty:
            raise _over(f"returning {format_qty(qty)} of {self.name}: shipped "
                        f"{format_qty(self.shipped_qty)}, already returned "
                        f"{format_qty(self.returned_qty)}")

    def invoice(self, qty: int) -> int:
        """Invoice (qty > 0) or credit note (qty < 0): the cost moved from GSNI to
        COGS (negative: moved back). Always zero under ``cogs_on: shipment``."""
        self.check_invoice(qty)
        self.invoiced_qty += qty
        if not self.on_invoice:
            return 0
        if qty > 0:
            moved = _take(self.uninvoiced, qty)
            self.invoiced[0] += qty
            self.invoiced[1] += moved
            return moved
        qty = -qty
        covered = min(qty, self.returned_uncredited_qty)  # goods already back: nothing moves
        self.returned_uncredited_qty -= covered
        rest = qty - covered
        moved = _take(self.invoiced, rest)
        self.uninvoiced[0] += rest
        self.uninvoiced[1] += moved
        return -moved

    def sales_return(self, qty: int) -> tuple[int, int]:
        """Goods back at the shipment's own cost: (value out of GSNI, value out of
        COGS). Under ``cogs_on: shipment`` all of it comes out of COGS."""
        self.check_return(qty)
        self.returned_qty += qty
        if not self.on_invoice:
            return 0, _take(self.uninvoiced, qty)
        from_uninvoiced = min(qty, self.uninvoiced[0])
        value_uninvoiced = _take(self.uninvoiced, from_uninvoiced)
        rest = qty - from_uninvoiced
        value_invoiced = _take(self.invoiced, rest)
        self.returned_uncredited_qty += rest
        return value_uninvoiced, value_invoiced

    def snapshot(self) -> tuple:
        return (tuple(self.uninvoiced), tuple(self.invoiced), self.returned_qty,
                self.returned_uncredited_qty, self.invoiced_qty)

    def restore(self, snap: tuple) -> None:
        uninvoiced, invoiced, self.returned_qty, self.returned_uncredited_qty, \
            self.invoiced_qty = snap
        self.uninvoiced, self.invoiced = list(uninvoiced), list(invoiced)


class WipPool:
    """Work in progress of one production order: what was issued and charged to
    it, until it completes (once) into finished goods."""

    __slots__ = ("order", "value", "postings", "completed")

    def __init__(self, order: str) -> None:
        self.order = order
        self.value = 0
        self.postings = 0  # issues and costs so far
        self.completed: int | None = None  # date it completed

    def ensure_open(self) -> None:
        if self.completed is not None:
            raise Rejection(ErrorCode.INVALID_EVENT,
                            f"production order {self.order!r} completed on "
                            f"{ymd_text(self.completed)}: open a new order")

    def add(self, amount: int) -> None:
        self.ensure_open()
        self.value += amount
        self.postings += 1

    def complete(self, date: int) -> int:
        """All WIP so far moves to the finished goods; the order is then closed."""
        self.ensure_open()
        if not self.postings:
            raise Rejection(ErrorCode.INVALID_EVENT,
                            f"production order {self.order!r} has no issue or cost to complete")
        value, self.value = self.value, 0
        self.completed = date
        return value

    def snapshot(self) -> tuple:
        return (self.value, self.postings, self.completed)

    def restore(self, snap: tuple) -> None:
        self.value, self.postings, self.completed = snap
