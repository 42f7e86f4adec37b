"""A deliberately naive auditor: the books recomputed from scratch.

Problem: the engine posts events as they arrive and corrects the past with
``recost`` entries; the auditor never does that. It takes the events that
stand (posted, not reversed), sorts them by ``(date, arrival)`` and walks them
once, applying SPEC 4/5/10 literally with exact fractions: FIFO/LIFO layers,
one pool for average and standard, the take rule ``round_half_up(V*q/Q, 2)``
(all of it takes exactly V), the receipt and shipment document pools. Every
effect is dated at its event's date, which is what the engine's ledger must
add up to at any as-of date once its recosts are in (SPEC 6: "for any date D,
the subledger's value as of D equals the GL's inventory balance as of D").

It shares no code with ``stockledger``: if both are wrong the same way it is
because the SPEC was read the same way.

``predict`` goes one step further and says, in arrival order, which events
must post and which must be rejected (and with which code), from the rule that
an event posts exactly when the history it joins stays valid at every point.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from tests.sim.streams import PRODUCTS, Ev

ZERO = Decimal(0)

# -- money ------------------------------------------------------------------------------


def round_half_up(x: Fraction) -> int:
    """To the nearest integer, ties away from zero (SPEC 10)."""
    if x >= 0:
        return math.floor(x + Fraction(1, 2))
    return -math.floor(-x + Fraction(1, 2))


def take_rule(value: int, q: Decimal, whole: Decimal) -> int:
    """Value of q units out of `whole` units worth `value` cents (SPEC 5)."""
    if q == whole:
        return value
    if q == 0:
        return 0
    return round_half_up(Fraction(value) * Fraction(q) / Fraction(whole))


def cents(q: Decimal, price: Decimal) -> int:
    """qty x unit price in cents, half-up."""
    return round_half_up(Fraction(q) * Fraction(price) * 100)


# -- chart of accounts (mirrors streams.setup_document) -----------------------------------

GRNI, AP, AR, REVENUE, COGS, GSNI, PPV = "2100", "2000", "1200", "4000", "5000", "1350", "5100"
INVENTORY_ACCOUNTS = ("1300", "1310", "1320", "1330")


def inventory_account(sku: str, loc: str) -> str:
    category = PRODUCTS[sku][0]
    if category == "AVG":
        return "1330" if loc == "WH2" else "1310"
    return "1320" if loc == "WH2" else "1300"


def adjustment_account(reason: str | None) -> str:
    return "5210" if reason == "damage" else "5200"


def method(sku: str) -> str:
    return PRODUCTS[sku][1]


def on_invoice(sku: str) -> bool:
    return PRODUCTS[sku][2] == "invoice"


def standard_cost(sku: str) -> Decimal | None:
    text = PRODUCTS[sku][3]
    return Decimal(text) if text is not None else None


class Infeasible(Exception):
    def __init__(self, code: str, event: Ev, message: str) -> None:
        super().__init__(f"{code} at {event.id} ({event.type} {event.date}): {message}")
        self.code, self.event = code, event


# -- stock ---------------------------------------------------------------------------------


class Stock:
    """One SKU at one location: layers (fifo, lifo) or one pool (average, standard),
    and, under negative_stock: allow, the shortfalls of outflows not yet settled."""

    def __init__(self, sku: str, valuation: str | None = None,
                 standard: Decimal | None = None) -> None:
        self.sku = sku
        self.method = valuation if valuation is not None else method(sku)
        self.layered = self.method in ("fifo", "lifo")
        self.layers: list[list] = []  # [origin, qty, value], oldest first
        self.pool_qty = ZERO
        self.pool_value = 0
        self.last_in: tuple[int, Decimal] | None = None  # (value, qty) of the last inflow
        self.standard = standard if valuation is not None else standard_cost(sku)
        self.shortfalls: list[list] = []  # [qty, value, inventory account, counter account]

    @property
    def qty(self) -> Decimal:
        """On hand (never negative)."""
        return sum((layer[1] for layer in self.layers), ZERO) if self.layered else self.pool_qty

    @property
    def value(self) -> int:
        return sum(layer[2] for layer in self.layers) if self.layered else self.pool_value

    @property
    def book_qty(self) -> Decimal:
        """On hand less what is owed: what a count compares with."""
        return self.qty - sum((short[0] for short in self.shortfalls), ZERO)

    def take(self, q: Decimal, ev: Ev, prefer: str | None = None,
             short_ok: bool = False, accounts: tuple[str, str] | None = None) -> int:
        """Take q out at cost. Short under allow: all on hand, the rest valued at the
        current unit cost after that and owed (a shortfall)."""
        if q > self.qty:
            if not short_ok:
                raise Infeasible("INSUFFICIENT_STOCK", ev,
                                 f"{self.sku}: {self.qty} on hand, {q} needed")
            short = q - self.qty
            taken = self._take(self.qty, prefer)
            short_value = self.current(short)
            self.shortfalls.append([short, short_value, *accounts])  # type: ignore[misc]
            return taken + short_value
        return self._take(q, prefer)

    def _take(self, q: Decimal, prefer: str | None) -> int:
        if not q:
            return 0
        if not self.layered:
            value = take_rule(self.pool_value, q, self.pool_qty)
            self.pool_qty -= q
            self.pool_value -= value
            return value
        order = list(range(len(self.layers)))
        if self.method == "lifo":
            order.reverse()
        if prefer is not None:
            order = ([i for i in order if self.layers[i][0] == prefer]
                     + [i for i in order if self.layers[i][0] != prefer])
        need, taken = q, 0
        for i in order:
            if not need:
                break
            origin, lqty, lvalue = self.layers[i]
            self._took(origin, min(lqty, need))
            if lqty <= need:
                taken += lvalue
                need -= lqty
                self.layers[i] = [origin, ZERO, 0]
            else:
                part = take_rule(lvalue, need, lqty)
                self.layers[i] = [origin, lqty - need, lvalue - part]
                taken += part
                need = ZERO
        self.layers = [layer for layer in self.layers if layer[1] > 0]
        return taken

    def _took(self, origin: str, units: Decimal) -> None:
        """Called for each layer an outflow takes units from (a hook for subclasses)."""

    def add(self, q: Decimal, value: int, origin: str) -> list[tuple[int, str, str]]:
        """An inflow: settles shortfalls oldest first (each at this inflow's cost, by
        the take rule), the rest becomes a layer. Returns (difference, inventory
        account, counter account) per settled shortfall."""
        settled = []
        qty_left, value_left = q, value
        while self.shortfalls and qty_left:
            short = self.shortfalls[0]
            part = min(qty_left, short[0])
            actual = take_rule(value_left, part, qty_left)
            assigned = take_rule(short[1], part, short[0])
            settled.append((actual - assigned, short[2], short[3]))
            qty_left -= part
            value_left -= actual
            short[0] -= part
            short[1] -= assigned
            if not short[0]:
                self.shortfalls.pop(0)
        if qty_left:
            if self.layered:
                self.layers.append([origin, qty_left, value_left])
            else:
                self.pool_qty += qty_left
                self.pool_value += value_left
        self.last_in = (value, q)
        return settled

    def current(self, q: Decimal) -> int:
        """Value of q units at the current unit cost (SPEC 5)."""
        if self.qty > 0:
            return take_rule(self.value, q, self.qty)
        if self.last_in is not None:
            value, lq = self.last_in
            return round_half_up(Fraction(value) * Fraction(q) / Fraction(lq))
        if self.standard is not None:
            return cents(q, self.standard)
        return 0

    def remaining_of(self, origin: str, received: Decimal) -> Decimal:
        """What is left of a receipt's layer (average/standard: min(received, on hand))."""
        if self.layered:
            return sum((layer[1] for layer in self.layers if layer[0] == origin), ZERO)
        return max(ZERO, min(received, self.pool_qty))

    def add_value(self, origin: str, amount: int) -> None:
        if not amount:
            return
        if self.layered:
            for layer in self.layers:
                if layer[0] == origin:
                    layer[2] += amount
                    return
            raise AssertionError("auditor: no layer for a bill's share")
        self.pool_value += amount


# -- document pools ----------------------------------------------------------------------------


def take_pair(pair: list, q: Decimal) -> int:
    value = take_rule(pair[1], q, pair[0])
    pair[0] -= q
    pair[1] -= value
    return value


class ReceiptDocs:
    def __init__(self, receipt: Ev, grni: int) -> None:
        self.receipt = receipt
        self.received = receipt.qty
        self.unbilled = [receipt.qty, grni]
        self.billed = [ZERO, 0]
        self.returnable = [receipt.qty, grni]
        self.returned_uncredited = [ZERO, 0]


class ShipmentDocs:
    def __init__(self, shipment: Ev, cost: int, invoice: bool | None = None,
                 qty: Decimal | None = None) -> None:
        self.shipped = shipment.qty if qty is None else qty
        self.on_invoice = on_invoice(shipment.sku) if invoice is None else invoice  # type: ignore[arg-type]
        self.uninvoiced = [self.shipped, cost]  # cogs_on shipment: all not yet returned
        self.invoiced = [ZERO, 0]
        self.returned = ZERO
        self.invoiced_qty = ZERO  # net of credit notes
        self.returned_uncredited = ZERO  # returned out of the invoiced part


# -- the books -------------------------------------------------------------------------------------


class Books:
    """The state after walking a list of events in (date, arrival) order.

    The chart of accounts and the products are read through the methods below
    (``inventory_account``, ``method``...), so that a subclass with another
    setup (``complex_auditor``) reuses the handlers."""

    def __init__(self, allow: bool = False) -> None:
        self.allow = allow  # negative_stock: allow
        self.stock: dict[tuple[str, str], Stock] = {}
        self.receipts: dict[str, ReceiptDocs] = {}
        self.shipments: dict[str, ShipmentDocs] = {}
        self.gl: list[tuple[int, str, int]] = []  # (date, account, amount; + debit)
        self.moves: list[tuple[int, tuple[str, str], Decimal, int]] = []  # (date, key, qty, value)

    # -- the setup ------------------------------------------------------------------------
    def inventory_account(self, sku: str, loc: str) -> str:
        return inventory_account(sku, loc)

    def adjustment_account(self, reason: str | None) -> str:
        return adjustment_account(reason)

    def method(self, sku: str) -> str:
        return method(sku)

    def on_invoice(self, sku: str) -> bool:
        return on_invoice(sku)

    def standard_cost(self, sku: str) -> Decimal | None:
        return standard_cost(sku)

    def standard_cost_at(self, sku: str, loc: str) -> Decimal | None:
        """The standard a receipt of `sku` at `loc` enters at (now)."""
        return self.standard_cost(sku)

    def new_stock(self, sku: str, loc: str) -> Stock:
        return Stock(sku)

    def origin(self, ev: Ev) -> str:
        """The layer origin of the inflow of `ev` (and what documents look it up by)."""
        return ev.id

    # -- helpers --------------------------------------------------------------------------
    def key(self, sku: str, loc: str) -> Stock:
        k = (sku, loc)
        if k not in self.stock:
            self.stock[k] = self.new_stock(sku, loc)
        return self.stock[k]

    def post(self, ev: Ev, *lines: tuple[str, int]) -> None:
        total = sum(amount for _, amount in lines)
        if total:
            raise AssertionError(f"auditor bug: unbalanced {ev.id}: {lines}")
        for account, amount in lines:
            if amount:
                self.gl.append((ev.date, account, amount))

    def out(self, ev: Ev, sku: str, loc: str, q: Decimal, prefer: str | None = None,
            counter: str | None = None) -> int:
        """Take q out; with a `counter` account (shipments, negative adjustments) it
        may fall short under allow."""
        short_ok = self.allow and counter is not None
        value = self.key(sku, loc).take(q, ev, prefer, short_ok,
                                        (self.inventory_account(sku, loc), counter))  # type: ignore[arg-type]
        self.moves.append((ev.date, (sku, loc), -q, -value))
        return value

    def inflow(self, ev: Ev, sku: str, loc: str, q: Decimal, value: int | None) -> int:
        stock = self.key(sku, loc)
        if value is None:
            value = stock.current(q)
        settled = stock.add(q, value, self.origin(ev))
        self.moves.append((ev.date, (sku, loc), q, value))
        for difference, inventory, counter in settled:  # recost on the outflow, dated here
            if difference:
                self.moves.append((ev.date, (sku, loc), ZERO, -difference))
                self.gl.append((ev.date, inventory, -difference))
                self.gl.append((ev.date, counter, difference))
        return value

    # -- events -----------------------------------------------------------------------------
    def apply(self, ev: Ev, refs: dict[str, Ev]) -> None:
        getattr(self, "_" + ev.type)(ev, refs)

    def _receipt(self, ev: Ev, refs: dict[str, Ev]) -> None:
        actual = cents(ev.qty, ev.unit_cost)  # type: ignore[arg-type]
        std = self.standard_cost_at(ev.sku, ev.loc) if self.method(ev.sku) == "standard" else None  # type: ignore[arg-type]
        value = cents(ev.qty, std) if std is not None else actual  # type: ignore[arg-type]
        self.inflow(ev, ev.sku, ev.loc, ev.qty, value)  # type: ignore[arg-type]
        inv = self.inventory_account(ev.sku, ev.loc)  # type: ignore[arg-type]
        self.post(ev, (inv, value), (GRNI, -actual), (PPV, actual - value))
        self.receipts[ev.id] = ReceiptDocs(ev, actual)

    def _vendor_bill(self, ev: Ev, refs: dict[str, Ev]) -> None:
        receipt = refs[ev.ref]  # type: ignore[index]
        docs = self.receipts[receipt.id]
        sku, loc = receipt.sku, receipt.loc
        ap = abs(cents(ev.qty, ev.unit_cost))  # type: ignore[arg-type]
        if ev.qty > 0:  # type: ignore[operator]
            if ev.qty > docs.unbilled[0]:
                raise Infeasible("OVER_RETURN", ev, f"billing {ev.qty} of {docs.unbilled[0]} unbilled")
            cleared = take_pair(docs.unbilled, ev.qty)  # type: ignore[arg-type]
            docs.billed[0] += ev.qty
            docs.billed[1] += cleared
            lines = [(GRNI, cleared), (AP, -ap)]
            difference = ap - cleared
        else:
            q = -ev.qty  # type: ignore[operator]
            if q > docs.billed[0]:
                raise Infeasible("OVER_RETURN", ev, f"crediting {q} of {docs.billed[0]} billed")
            # first the units returned and not yet credited: GRNI back at what the
            # returns debited, AP at the credited amount, the difference to PPV
            covered = min(q, docs.returned_uncredited[0])
            grni_back = take_pair(docs.returned_uncredited, covered)
            if covered:
                take_pair(docs.billed, covered)  # billed, returned and now credited
            ap_covered = take_rule(ap, covered, q)
            # the rest is a price credit, taken back from the billed pool
            rest = q - covered
            put_back = take_pair(docs.billed, rest)
            docs.unbilled[0] += rest
            docs.unbilled[1] += put_back
            lines = [(AP, ap), (GRNI, -(grni_back + put_back)), (PPV, grni_back - ap_covered)]
            difference = put_back - (ap - ap_covered)
        if difference:
            if self.method(sku) == "standard":  # type: ignore[arg-type]
                lines.append((PPV, difference))
            else:  # the share of what is still on hand to inventory, the rest to COGS
                stock = self.key(sku, loc)  # type: ignore[arg-type]
                remaining = stock.remaining_of(self.origin(receipt), docs.received)  # type: ignore[arg-type]
                share = round_half_up(Fraction(difference) * Fraction(remaining)
                                      / Fraction(docs.received)) if remaining else 0
                stock.add_value(self.origin(receipt), share)
                self.moves.append((ev.date, (sku, loc), ZERO, share))  # type: ignore[arg-type]
                lines += [(self.inventory_account(sku, loc), share), (COGS, difference - share)]  # type: ignore[arg-type]
        self.post(ev, *lines)

    def _purchase_return(self, ev: Ev, refs: dict[str, Ev]) -> None:
        receipt = refs[ev.ref]  # type: ignore[index]
        docs = self.receipts[receipt.id]
        if ev.qty > docs.returnable[0]:  # type: ignore[operator]
            raise Infeasible("OVER_RETURN", ev, f"returning {ev.qty} of {docs.returnable[0]}")
        grni = take_pair(docs.returnable, ev.qty)  # type: ignore[arg-type]
        docs.returned_uncredited[0] += ev.qty
        docs.returned_uncredited[1] += grni
        prefer = self.origin(receipt) if receipt.loc == ev.loc else None
        cost = self.out(ev, ev.sku, ev.loc, ev.qty, prefer)  # type: ignore[arg-type]
        self.post(ev, (self.inventory_account(ev.sku, ev.loc), -cost), (GRNI, grni),  # type: ignore[arg-type]
                  (PPV, cost - grni))

    def _shipment(self, ev: Ev, refs: dict[str, Ev]) -> None:
        counter = GSNI if self.on_invoice(ev.sku) else COGS  # type: ignore[arg-type]
        cost = self.out(ev, ev.sku, ev.loc, ev.qty, counter=counter)  # type: ignore[arg-type]
        self.post(ev, (self.inventory_account(ev.sku, ev.loc), -cost), (counter, cost))  # type: ignore[arg-type]
        self.shipments[ev.id] = ShipmentDocs(ev, cost)

    def _customer_invoice(self, ev: Ev, refs: dict[str, Ev]) -> None:
        docs = self.shipments[ev.ref]  # type: ignore[index]
        if ev.qty > 0:  # type: ignore[operator]
            if docs.invoiced_qty + ev.qty > docs.shipped - docs.returned:  # type: ignore[operator]
                raise Infeasible("OVER_RETURN", ev, "invoicing more than shipped - returned")
        elif -ev.qty > docs.invoiced_qty:  # type: ignore[operator]
            raise Infeasible("OVER_RETURN", ev, "crediting more than invoiced")
        amount = cents(ev.qty, ev.unit_price)  # type: ignore[arg-type]
        self.post(ev, (AR, amount), (REVENUE, -amount))
        docs.invoiced_qty += ev.qty  # type: ignore[operator]
        if not docs.on_invoice:
            return
        if ev.qty > 0:  # type: ignore[operator]
            moved = take_pair(docs.uninvoiced, ev.qty)  # type: ignore[arg-type]
            docs.invoiced[0] += ev.qty
            docs.invoiced[1] += moved
        else:
            q = -ev.qty  # type: ignore[operator]
            covered = min(q, docs.returned_uncredited)  # goods already back: nothing moves
            docs.returned_uncredited -= covered
            rest = q - covered
            moved = -take_pair(docs.invoiced, rest)
            docs.uninvoiced[0] += rest
            docs.uninvoiced[1] -= moved
        self.post(ev, (COGS, moved), (GSNI, -moved))

    def _sales_return(self, ev: Ev, refs: dict[str, Ev]) -> None:
        inv = self.inventory_account(ev.sku, ev.loc)  # type: ignore[arg-type]
        if ev.ref is None:
            value = self.inflow(ev, ev.sku, ev.loc, ev.qty, None)  # type: ignore[arg-type]
            self.post(ev, (inv, value), (COGS, -value))
            return
        docs = self.shipments[ev.ref]
        if docs.returned + ev.qty > docs.shipped:  # type: ignore[operator]
            raise Infeasible("OVER_RETURN", ev, "returning more than shipped")
        docs.returned += ev.qty  # type: ignore[operator]
        if not docs.on_invoice:
            from_gsni, from_cogs = 0, take_pair(docs.uninvoiced, ev.qty)  # type: ignore[arg-type]
        else:
            first = min(ev.qty, docs.uninvoiced[0])  # type: ignore[type-var]
            from_gsni = take_pair(docs.uninvoiced, first)
            rest = ev.qty - first  # type: ignore[operator]
            from_cogs = take_pair(docs.invoiced, rest)
            docs.returned_uncredited += rest
        value = self.inflow(ev, ev.sku, ev.loc, ev.qty, from_gsni + from_cogs)  # type: ignore[arg-type]
        self.post(ev, (inv, value), (GSNI, -from_gsni), (COGS, -from_cogs))

    def _transfer(self, ev: Ev, refs: dict[str, Ev]) -> None:
        cost = self.out(ev, ev.sku, ev.loc, ev.qty)  # type: ignore[arg-type]
        self.inflow(ev, ev.sku, ev.to, ev.qty, cost)  # type: ignore[arg-type]
        self.post(ev, (self.inventory_account(ev.sku, ev.loc), -cost),  # type: ignore[arg-type]
                  (self.inventory_account(ev.sku, ev.to), cost))  # type: ignore[arg-type]

    def _adjustment(self, ev: Ev, refs: dict[str, Ev]) -> None:
        inv = self.inventory_account(ev.sku, ev.loc)  # type: ignore[arg-type]
        if ev.qty < 0:  # type: ignore[operator]
            value = -self.out(ev, ev.sku, ev.loc, -ev.qty,  # type: ignore[arg-type,operator]
                              counter=self.adjustment_account(ev.reason))
        else:
            given = cents(ev.qty, ev.unit_cost) if ev.unit_cost is not None else None  # type: ignore[arg-type]
            value = self.inflow(ev, ev.sku, ev.loc, ev.qty, given)  # type: ignore[arg-type]
        self.post(ev, (inv, value), (self.adjustment_account(ev.reason), -value))

    def _cycle_count(self, ev: Ev, refs: dict[str, Ev]) -> None:
        stock = self.key(ev.sku, ev.loc)  # type: ignore[arg-type]
        variance = ev.qty - stock.book_qty  # type: ignore[operator]
        value = 0
        if variance < 0:
            value = -self.out(ev, ev.sku, ev.loc, -variance)  # type: ignore[arg-type]
        elif variance > 0:
            value = self.inflow(ev, ev.sku, ev.loc, variance, None)  # type: ignore[arg-type]
        self.post(ev, (self.inventory_account(ev.sku, ev.loc), value),  # type: ignore[arg-type]
                  (self.adjustment_account("cycle_count"), -value))

    # -- reading ------------------------------------------------------------------------------
    def valuation(self, as_of: int | None = None) -> dict[tuple[str, str], tuple[Decimal, int]]:
        """(qty, value) per SKU/location, as of a date; zero lines left out."""
        out: dict[tuple[str, str], list] = defaultdict(lambda: [ZERO, 0])
        for date, key, q, value in self.moves:
            if as_of is None or date <= as_of:
                out[key][0] += q
                out[key][1] += value
        return {k: (q, v) for k, (q, v) in out.items() if q or v}

    def trial_balance(self, as_of: int | None = None) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for date, account, amount in self.gl:
            if as_of is None or date <= as_of:
                out[account] += amount
        return {k: v for k, v in out.items() if v}


def standing(posted: list[Ev]) -> list[Ev]:
    """The posted events that stand: reversals and what they reversed removed."""
    gone = {e.ref for e in posted if e.type == "reversal"}
    return [e for e in posted if e.type != "reversal" and e.id not in gone]


def audit(posted: Iterable[Ev], allow: bool = False, books_class: type[Books] = Books) -> Books:
    """The books of the posted events, walked in (date, arrival) order.
    Raises Infeasible if that history is not valid (e.g. stock goes negative)."""
    events = standing(list(posted))
    refs = {e.id: e for e in events}
    books = books_class(allow)
    for ev in sorted(events, key=lambda e: (e.date, e.n)):
        books.apply(ev, refs)
    return books


def naive_quantities(posted: Iterable[Ev], as_of: int | None = None) -> dict[tuple[str, str], Decimal]:
    """Quantity per SKU/location: receipts +, shipments -, transfers -/+, adjustments
    +/-, returns, counts set the quantity; reversed events removed. Nothing else."""
    qty: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for ev in sorted(standing(list(posted)), key=lambda e: (e.date, e.n)):
        if as_of is not None and ev.date > as_of:
            continue
        if ev.type in ("receipt", "sales_return", "adjustment"):
            qty[(ev.sku, ev.loc)] += ev.qty  # type: ignore[index,operator]
        elif ev.type in ("shipment", "purchase_return"):
            qty[(ev.sku, ev.loc)] -= ev.qty  # type: ignore[index,operator]
        elif ev.type == "transfer":
            qty[(ev.sku, ev.loc)] -= ev.qty  # type: ignore[index,operator]
            qty[(ev.sku, ev.to)] += ev.qty  # type: ignore[index,operator]
        elif ev.type == "cycle_count":
            qty[(ev.sku, ev.loc)] = ev.qty  # type: ignore[index,assignment]
    return {k: q for k, q in qty.items() if q}


DOCUMENT_REFS = {"vendor_bill": "receipt", "purchase_return": "receipt",
                 "customer_invoice": "shipment", "sales_return": "shipment"}


def predict(events: list[Ev], allow: bool = False) -> dict[str, tuple[str, str | None]]:
    """(status, code) per event id, posting `events` in arrival order."""
    posted: list[Ev] = []
    posted_ids: dict[str, Ev] = {}
    reversed_ids: set[str] = set()
    out: dict[str, tuple[str, str | None]] = {}
    for ev in events:
        code = _first_problem(ev, posted, posted_ids, reversed_ids, allow)
        if code is None:
            out[ev.id] = ("posted", None)
            posted.append(ev)
            posted_ids[ev.id] = ev
            if ev.type == "reversal":
                reversed_ids.add(ev.ref)  # type: ignore[arg-type]
        else:
            out[ev.id] = ("exception", code)
    return out


def _first_problem(ev: Ev, posted: list[Ev], posted_ids: dict[str, Ev],
                   reversed_ids: set[str], allow: bool) -> str | None:
    if ev.type == "reversal":
        target = posted_ids.get(ev.ref)  # type: ignore[arg-type]
        if target is None:
            return "UNKNOWN_REFERENCE"
        if target.type == "reversal":
            return "INVALID_EVENT"
        if target.id in reversed_ids:
            return "ALREADY_REVERSED"
        if any(e.ref == target.id and e.type != "reversal" and e.id not in reversed_ids
               for e in posted):
            return "INVALID_EVENT"  # live documents refer to it
    elif ev.ref is not None:
        base = posted_ids.get(ev.ref)
        if base is None or base.id in reversed_ids:
            return "UNKNOWN_REFERENCE"
        if base.type != DOCUMENT_REFS[ev.type]:
            return "INVALID_EVENT"
        if ev.date < base.date:
            return "INVALID_EVENT"
    try:
        audit(posted + [ev], allow)
    except Infeasible as exc:
        return exc.code
    return None
