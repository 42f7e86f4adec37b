"""Random but plausible event streams for the simulator (STYLE: "a seeded
simulator throws random streams at the engine").

Problem: a uniformly random stream is almost all rejections (bills for
receipts that do not exist, shipments of stock that is not there), so it tests
the exception queue and little else. The generator therefore keeps a small
*quantity-only* model of what it has generated so far, in ``(date, arrival)``
order, and draws each event against it: bills and returns refer to earlier
receipts and shipments, outflows stay (mostly) within the stock on hand at
their date, and a share of the events is backdated before events already
generated for the same SKU and location. The model is only a guide for the
generator; the auditor (``auditor.py``) is what the tests trust.

All choices go through a ``Chooser``: Hypothesis drives it in the property
tests (so failing streams shrink), ``random.Random(seed)`` in the seeded runs
(so a failure prints a seed). ``strict=True`` generates the streams of the
order-independence property: every event is valid at its arrival *and* in
date order, and there are no reversals. ``policy="allow"`` makes streams for
``negative_stock: allow``: shipments and negative adjustments often overdraw
(shortfalls, settled by later inflows); sales returns come without ref.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from stockledger.limits import SLICE_EVENTS_MAX
from tests.conftest import base_setup

YEAR_MONTH = 202601
DAYS = 28

# sku -> (category, valuation, cogs_on, standard_cost)
PRODUCTS: dict[str, tuple[str, str, str, str | None]] = {
    "F1": ("FIFO", "fifo", "shipment", "4.50"),
    "L1": ("LIFO", "lifo", "shipment", None),
    "A1": ("AVG", "average", "shipment", None),
    "S1": ("STD", "standard", "shipment", "5.00"),
    "G1": ("FINV", "fifo", "invoice", None),
}
LOCATIONS = ("WH1", "WH2")
REASONS = ("damage", "found", "shrink")

# Inventory accounts: WH2 has its own, category AVG its own, AVG at WH2 a third.
INVENTORY_MAPPING = [
    {"role": "inventory", "location": "WH2", "account": "1320"},
    {"role": "inventory", "category": "AVG", "account": "1310"},
    {"role": "inventory", "category": "AVG", "location": "WH2", "account": "1330"},
]


def setup_document(policy: str = "reject") -> dict[str, Any]:
    """The scenarios' chart of accounts with five products in five categories."""
    categories = {}
    products = []
    for sku, (category, method, cogs_on, standard) in PRODUCTS.items():
        categories[category] = {"code": category, "valuation": method, "cogs_on": cogs_on}
        product = {"sku": sku, "category": category, "uom": "EA"}
        if standard is not None:
            product["standard_cost"] = standard
        products.append(product)
    doc = base_setup(
        categories=list(categories.values()),
        products=products,
        locations=[{"code": code, "entity": "ACME"} for code in LOCATIONS],
    )
    doc["mapping"] = list(doc.get("mapping") or []) + INVENTORY_MAPPING
    doc["policies"] = {"negative_stock": policy}
    return doc


def day(ymd: int) -> str:
    return f"{ymd // 10000:04d}-{ymd // 100 % 100:02d}-{ymd % 100:02d}"


# ---------------------------------------------------------------------------
# Events as generated
# ---------------------------------------------------------------------------

@dataclass
class Ev:
    """One generated event; `n` is its arrival position in the stream."""

    n: int
    id: str
    type: str
    date: int  # yyyymmdd
    sku: str | None = None
    qty: Decimal | None = None  # as sent (signed)
    loc: str | None = None  # location, or `from` of a transfer
    to: str | None = None
    ref: str | None = None
    unit_cost: Decimal | None = None
    unit_price: Decimal | None = None
    reason: str | None = None
    give_location: bool = True  # documents may leave the location to their ref

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "type": self.type, "date": day(self.date)}
        if self.type == "transfer":
            doc["from"], doc["to"] = self.loc, self.to
        elif self.loc is not None and self.give_location:
            doc["location"] = self.loc
        if self.ref is not None:
            doc["ref"] = self.ref
        if self.reason is not None and self.type == "adjustment":
            doc["reason"] = self.reason
        if self.sku is not None:
            doc["sku"] = self.sku
            doc["qty"] = str(self.qty)
        if self.unit_cost is not None:
            doc["unit_cost"] = str(self.unit_cost)
        if self.unit_price is not None:
            doc["unit_price"] = str(self.unit_price)
        return doc

    def line(self) -> str:
        return json.dumps(self.to_json())


@dataclass
class Stream:
    """A generated stream: the events in arrival order, cut into posting chunks."""

    events: list[Ev]
    chunks: list[int]  # sizes, summing to len(events)
    skus: tuple[str, ...]
    strict: bool = False
    policy: str = "reject"  # negative_stock
    slice_size: int = SLICE_EVENTS_MAX  # events a posting transaction works through at once

    def lines(self) -> list[str]:
        return [e.line() for e in self.events]

    def chunked(self) -> Iterable[list[Ev]]:
        start = 0
        for size in self.chunks:
            yield self.events[start:start + size]
            start += size

    def dates(self) -> list[int]:
        return sorted({e.date for e in self.events})

    def backdated_share(self) -> float:
        return backdated_count(self.events) / max(1, len(self.events))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis prints this
        printer.text(repr(self))

    def __repr__(self) -> str:
        body = []
        start = 0
        for number, size in enumerate(self.chunks, 1):
            body.append(f"# chunk {number} ({size} events)")
            body.extend(e.line() for e in self.events[start:start + size])
            start += size
        lines = "\n".join(body)
        return (f"Stream(skus={','.join(self.skus)}, strict={self.strict}, policy={self.policy}, "
                f"slice_size={self.slice_size}, {len(self.events)} events, JSON lines:\n{lines}\n)")


def keys_of(ev: Ev, by_id: dict[str, Ev]) -> list[tuple[str, str]]:
    """The SKU/location stock keys an event touches (a document: its ref's)."""
    if ev.type == "reversal":
        target = by_id.get(ev.ref or "")
        return keys_of(target, by_id) if target is not None else []
    if ev.type == "transfer":
        return [(ev.sku, ev.loc), (ev.sku, ev.to)]  # type: ignore[list-item]
    if ev.type in ("vendor_bill", "customer_invoice"):
        ref = by_id.get(ev.ref or "")
        return [(ref.sku, ref.loc)] if ref is not None else []  # type: ignore[list-item]
    return [(ev.sku, ev.loc)]  # type: ignore[list-item]


def backdated_count(events: list[Ev]) -> int:
    """Events dated before an event that arrived earlier on the same SKU/location."""
    by_id = {e.id: e for e in events}
    latest: dict[tuple[str, str], int] = {}
    count = 0
    for ev in events:
        keys = keys_of(ev, by_id)
        if any(latest.get(k, 0) > ev.date for k in keys):
            count += 1
        for k in keys:
            latest[k] = max(latest.get(k, 0), ev.date)
    return count


# ---------------------------------------------------------------------------
# Choosers
# ---------------------------------------------------------------------------

class Chooser(Protocol):
    def int(self, lo: int, hi: int) -> int: ...


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class DrawChooser:
    """Hypothesis: every choice is a draw, so a failing stream shrinks."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))


# ---------------------------------------------------------------------------
# The quantity model that guides the generator
# ---------------------------------------------------------------------------

STOCK_IN = {"receipt", "sales_return"}
STOCK_OUT = {"shipment", "purchase_return"}


def stock_effects(ev: Ev, by_id: dict[str, Ev]) -> list[tuple[tuple[str, str], str, Decimal]]:
    """(key, 'add'|'set', qty) of an event, in the generator's view."""
    q = ev.qty or Decimal(0)
    if ev.type in STOCK_IN:
        return [((ev.sku, ev.loc), "add", q)]  # type: ignore[list-item]
    if ev.type in STOCK_OUT:
        return [((ev.sku, ev.loc), "add", -q)]  # type: ignore[list-item]
    if ev.type == "transfer":
        return [((ev.sku, ev.loc), "add", -q), ((ev.sku, ev.to), "add", q)]  # type: ignore[list-item]
    if ev.type == "adjustment":
        return [((ev.sku, ev.loc), "add", q)]  # type: ignore[list-item]
    if ev.type == "cycle_count":
        return [((ev.sku, ev.loc), "set", q)]  # type: ignore[list-item]
    return []


class Model:
    """What the generator believes is posted, and quantity questions about it."""

    def __init__(self, allow: bool = False) -> None:
        self.allow = allow  # negative_stock: allow (only transfers and returns must fit)
        self.events: list[Ev] = []  # believed posted, arrival order
        self.by_id: dict[str, Ev] = {}
        self.all_by_id: dict[str, Ev] = {}  # every generated event

    def live(self) -> list[Ev]:
        return self.events

    def add(self, ev: Ev) -> None:
        if ev.type == "reversal":
            target = self.by_id.pop(ev.ref or "", None)
            if target is not None:
                self.events.remove(target)
            return
        self.events.append(ev)
        self.by_id[ev.id] = ev

    # -- stock -------------------------------------------------------------------
    def _series(self, key: tuple[str, str], events: list[Ev]
                ) -> list[tuple[tuple[int, int], Decimal, bool, bool]]:
        """(position, balance after, is_count, must_fit) for each event touching key,
        in order; must_fit: an outflow that may never be short (all of them under
        reject; transfers and purchase returns under allow)."""
        moves = []
        for ev in events:
            for k, how, q in stock_effects(ev, self.all_by_id):
                if k == key:
                    must_fit = q < 0 and (not self.allow or ev.type in ("transfer", "purchase_return"))
                    moves.append(((ev.date, ev.n), how, q, must_fit))
        moves.sort(key=lambda m: m[0])
        balance = Decimal(0)
        out = []
        for pos, how, q, must_fit in moves:
            balance = q if how == "set" else balance + q
            out.append((pos, balance, how == "set", must_fit))
        return out

    def balance_at(self, key: tuple[str, str], date: int, n: int) -> Decimal:
        balance = Decimal(0)
        for pos, after, _, _ in self._series(key, self.events):
            if pos < (date, n):
                balance = after
        return balance

    def headroom(self, key: tuple[str, str], date: int, n: int) -> Decimal:
        """The most an outflow at (date, n) can take without any later point going
        negative (until a count resets the quantity)."""
        series = self._series(key, self.events)
        room = self.balance_at(key, date, n)
        for pos, after, is_count, _ in series:
            if pos > (date, n):
                if is_count:
                    break
                room = min(room, after)
        return max(room, Decimal(0))

    def stock_ok(self, events: list[Ev], keys: Iterable[tuple[str, str]]) -> bool:
        if self.allow:
            return all(after >= 0 for key in set(keys)
                       for _, after, _, must_fit in self._series(key, events) if must_fit)
        return all(after >= 0 for key in set(keys) for _, after, _, _ in self._series(key, events))

    # -- documents ----------------------------------------------------------------
    def docs_of(self, ref: str, events: list[Ev]) -> list[Ev]:
        return sorted((e for e in events if e.ref == ref and e.type != "reversal"),
                      key=lambda e: (e.date, e.n))

    def _receipt_walk(self, receipt: Ev, events: list[Ev]) -> tuple[Decimal, Decimal, Decimal] | None:
        """(unbilled, billed, returned) after the receipt's documents in date order;
        None if a point is invalid. A vendor credit first covers returned units
        (settled: they do not become billable again, SPEC 10)."""
        unbilled, billed, returned, uncredited = receipt.qty, Decimal(0), Decimal(0), Decimal(0)
        for doc in self.docs_of(receipt.id, events):
            q = doc.qty
            if doc.type == "purchase_return":
                returned += q  # type: ignore[operator]
                uncredited += q  # type: ignore[operator]
            elif q > 0:  # type: ignore[operator]
                unbilled -= q  # type: ignore[operator]
                billed += q  # type: ignore[operator]
            else:
                covered = min(-q, uncredited)  # type: ignore[operator]
                uncredited -= covered
                billed += q  # type: ignore[operator]
                unbilled += -q - covered  # type: ignore[operator]
            if unbilled < 0 or billed < 0 or returned > receipt.qty:  # type: ignore[operator]
                return None
        return unbilled, billed, returned  # type: ignore[return-value]

    def receipt_ok(self, receipt: Ev, events: list[Ev]) -> bool:
        return self._receipt_walk(receipt, events) is not None

    def shipment_ok(self, shipment: Ev, events: list[Ev]) -> bool:
        """Conservative: invoiced (net) plus returned never exceeds shipped."""
        invoiced, returned = Decimal(0), Decimal(0)
        for doc in self.docs_of(shipment.id, events):
            if doc.type == "customer_invoice":
                invoiced += doc.qty  # type: ignore[operator]
            elif doc.type == "sales_return":
                returned += doc.qty  # type: ignore[operator]
            if invoiced < 0 or invoiced + returned > shipment.qty:  # type: ignore[operator]
                return False
        return True

    def receipt_totals(self, receipt: Ev) -> tuple[Decimal, Decimal, Decimal]:
        """(unbilled, billed, returned) over all believed-posted documents."""
        walked = self._receipt_walk(receipt, self.events)
        return walked if walked is not None else (Decimal(0), Decimal(0), receipt.qty)  # type: ignore[return-value]

    def shipment_totals(self, shipment: Ev) -> tuple[Decimal, Decimal]:
        invoiced, returned = Decimal(0), Decimal(0)
        for doc in self.docs_of(shipment.id, self.events):
            if doc.type == "customer_invoice":
                invoiced += doc.qty  # type: ignore[operator]
            elif doc.type == "sales_return":
                returned += doc.qty  # type: ignore[operator]
        return invoiced, returned

    def ok_with(self, ev: Ev) -> bool:
        """Would the believed history stay valid (date order) with ev added?"""
        if ev.type == "reversal":
            target = self.by_id.get(ev.ref or "")
            if target is None or any(e.ref == target.id for e in self.events):
                return False
            events = [e for e in self.events if e is not target]
            keys = [k for k, _, _ in stock_effects(target, self.all_by_id)]
            ok = self.stock_ok(events, keys)
            if ok and target.ref is not None:
                base = self.by_id.get(target.ref)
                if base is not None:
                    ok = (self.receipt_ok(base, events) if base.type == "receipt"
                          else self.shipment_ok(base, events))
            return ok
        if ev.ref is not None:
            base = self.by_id.get(ev.ref)
            if base is None or ev.date < base.date:
                return False
        events = self.events + [ev]
        keys = [k for k, _, _ in stock_effects(ev, self.all_by_id)]
        if not self.stock_ok(events, keys):
            return False
        if ev.ref is not None:
            base = self.by_id[ev.ref]
            return (self.receipt_ok(base, events) if base.type == "receipt"
                    else self.shipment_ok(base, events))
        return True


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

# "skip" draws no event: it is choice 0, so Hypothesis shrinks unneeded events away.
GENERAL_WEIGHTS = (
    ("skip", 8), ("receipt", 22), ("shipment", 17), ("vendor_bill", 11), ("customer_invoice", 7),
    ("transfer", 8), ("adjustment", 8), ("cycle_count", 5), ("sales_return", 6),
    ("purchase_return", 6), ("reversal", 6),
)
STRICT_WEIGHTS = tuple((t, w) for t, w in GENERAL_WEIGHTS if t != "reversal")


class Draws:
    """The small draws both stream generators make from their chooser ``c``."""

    c: Chooser

    def chance(self, percent: int) -> bool:
        """True with about `percent` % probability; shrinks towards False."""
        return self.c.int(0, 99) >= 100 - percent

    def pick(self, items: Any) -> Any:
        items = list(items)
        return items[self.c.int(0, len(items) - 1)]

    def qty(self, hi: int = 20) -> Decimal:
        whole = self.c.int(1, hi)
        if self.chance(20):
            return Decimal(whole - 1) + Decimal(self.pick((25, 50, 75, 10, 5))) / 100
        return Decimal(whole)

    def cost(self, lo: int = 50, hi: int = 2000) -> Decimal:
        return Decimal(self.c.int(lo, hi)) / 100

    def weighted(self, weights: Any) -> str:
        """One kind of ``(kind, weight)`` pairs, drawn by weight."""
        roll = self.c.int(0, sum(w for _, w in weights) - 1)
        for kind, weight in weights:
            if roll < weight:
                break
            roll -= weight
        return kind


class Generator(Draws):
    def __init__(self, c: Chooser, strict: bool, allow: bool = False) -> None:
        self.c = c
        self.strict = strict
        self.allow = allow
        self.model = Model(allow)
        self.events: list[Ev] = []
        self.frontier = 1
        self.advance = 35

    def cap(self, q: Decimal, room: Decimal) -> Decimal | None:
        """q limited to room (keeping 2 decimals); None when nothing fits."""
        if q <= room:
            return q
        capped = room.quantize(Decimal("0.01"), rounding="ROUND_DOWN")
        return capped if capped > 0 else None

    def date(self, keys: list[tuple[str, str]], floor: int = 1) -> int:
        """A date: when possible, 45% of the time backdated (before events already
        generated for one of `keys`), else at the moving frontier (~30% of all
        events end up backdated)."""
        if self.chance(self.advance):
            self.frontier = min(DAYS, self.frontier + 1)
        latest = 0
        for ev in self.events:
            if any(k in keys for k in keys_of(ev, self.model.all_by_id)):
                latest = max(latest, ev.date % 100)
        if latest - 1 >= floor and self.chance(45):
            return YEAR_MONTH * 100 + self.c.int(floor, latest - 1)
        return YEAR_MONTH * 100 + max(self.frontier, floor)

    # -- events ------------------------------------------------------------------------
    def make(self, kind: str, n: int, skus: tuple[str, ...]) -> Ev | None:
        m = self.model
        eid = f"e{n:03d}"
        loc = "WH1" if self.chance(65) else "WH2"
        if kind == "receipt":
            sku = self.pick(skus)
            return Ev(n, eid, kind, self.date([(sku, loc)]), sku, self.qty(), loc,
                      unit_cost=self.cost())
        if kind in ("shipment", "adjustment", "cycle_count", "transfer"):
            sku = self.pick(skus)
            d = self.date([(sku, loc)] + ([(sku, other(loc))] if kind == "transfer" else []))
            room = m.headroom((sku, loc), d, n)
            if kind == "cycle_count":
                book = m.balance_at((sku, loc), d, n)
                counted = max(Decimal(0), book + self.c.int(-3, 3))
                if self.strict:
                    counted = max(counted, book - room)  # later outflows must still fit
                return Ev(n, eid, kind, d, sku, counted, loc)
            if kind == "adjustment" and self.chance(45):
                unit_cost = self.cost() if self.chance(50) else None
                return Ev(n, eid, kind, d, sku, self.qty(8), loc, unit_cost=unit_cost,
                          reason=self.pick(REASONS))
            q = self.qty(12)
            overdraw = 35 if self.allow and kind != "transfer" else 12
            if not (not self.strict and self.chance(overdraw)):  # now and then: too much
                q = self.cap(q, room)
                if q is None:
                    return None
            if kind == "shipment":
                return Ev(n, eid, kind, d, sku, q, loc)
            if kind == "transfer":
                return Ev(n, eid, kind, d, sku, q, loc, to=other(loc))
            return Ev(n, eid, kind, d, sku, -q, loc, reason=self.pick(REASONS))
        if kind in ("vendor_bill", "purchase_return"):
            receipts = [e for e in m.events if e.type == "receipt"]
            if not receipts:
                return None
            r = self.pick(receipts)
            unbilled, billed, returned = m.receipt_totals(r)
            d = self.date([(r.sku, r.loc)], floor=r.date % 100)  # type: ignore[list-item]
            if kind == "purchase_return":
                room = min(r.qty - returned, m.headroom((r.sku, r.loc), d, n))  # type: ignore[arg-type,operator]
                q = self.cap(self.qty(max(1, int(r.qty))), room)  # type: ignore[arg-type]
                if q is None:
                    return None
                return Ev(n, eid, kind, d, r.sku, q, r.loc, ref=r.id,
                          give_location=self.chance(50))
            if billed > 0 and self.chance(15):  # a vendor credit
                q = self.cap(self.qty(max(1, int(billed))), billed)
                price = r.unit_cost if self.chance(50) else self.cost()
                if q is None:
                    return None
                return Ev(n, eid, kind, d, r.sku, -q, r.loc, ref=r.id, unit_cost=price,
                          give_location=False)
            if unbilled <= 0:
                return None
            q = unbilled if self.chance(55) else self.cap(self.qty(max(1, int(unbilled))),
                                                          unbilled)
            if q is None:
                return None
            price = r.unit_cost
            if self.chance(55):
                price = max(Decimal(0), price + Decimal(self.c.int(-150, 150)) / 100)  # type: ignore[operator]
            return Ev(n, eid, kind, d, r.sku, q, r.loc, ref=r.id, unit_cost=price,
                      give_location=False)
        if kind == "sales_return" and self.allow:
            # by ref, the shipment's cost would depend on its settlements (left open
            # by the SPEC): under allow, returns come without ref, at current cost
            sku = self.pick(skus)
            return Ev(n, eid, kind, self.date([(sku, loc)]), sku, self.qty(6), loc)
        if kind in ("customer_invoice", "sales_return"):
            shipments = [e for e in m.events if e.type == "shipment"
                         and not (self.allow and PRODUCTS[e.sku][2] == "invoice")]  # type: ignore[index]
            if not shipments:
                return None
            s = self.pick(shipments)
            invoiced, returned = m.shipment_totals(s)
            d = self.date([(s.sku, s.loc)], floor=s.date % 100)  # type: ignore[list-item]
            open_qty = s.qty - invoiced - returned  # type: ignore[operator]
            if kind == "customer_invoice":
                if not self.strict and invoiced > 0 and self.chance(12):  # a credit note
                    q = self.cap(self.qty(max(1, int(invoiced))), invoiced)
                    return None if q is None else Ev(n, eid, kind, d, s.sku, -q, s.loc,
                                                     ref=s.id, unit_price=self.cost(100, 3000),
                                                     give_location=False)
                q = open_qty if self.chance(50) else self.cap(self.qty(max(1, int(open_qty))),
                                                              open_qty)
                if q is None or q <= 0:
                    return None
                return Ev(n, eid, kind, d, s.sku, q, s.loc, ref=s.id,
                          unit_price=self.cost(100, 3000), give_location=False)
            where = s.loc if self.chance(80) else other(s.loc)  # type: ignore[arg-type]
            q = self.cap(self.qty(max(1, int(s.qty))), open_qty)  # type: ignore[arg-type]
            if q is None:
                return None
            return Ev(n, eid, kind, d, s.sku, q, where, ref=s.id,
                      give_location=where != s.loc or self.chance(50))
        if kind == "reversal":
            candidates = [e for e in self.events if e.type != "reversal"]
            if not candidates:
                return None
            target = self.pick(candidates)
            return Ev(n, eid, kind, YEAR_MONTH * 100 + self.frontier, ref=target.id)
        raise AssertionError(kind)

    def run(self, count: int, skus: tuple[str, ...]) -> list[Ev]:
        weights = STRICT_WEIGHTS if self.strict else GENERAL_WEIGHTS
        self.advance = max(25, min(85, 2400 // max(1, count)))
        for _ in range(count):
            n = len(self.events)
            kind = self.weighted(weights)
            ev = None if kind == "skip" else self.make(kind, n, skus)
            if ev is None:
                continue
            self.model.all_by_id[ev.id] = ev
            ok = self.model.ok_with(ev)
            if self.strict and not ok:
                del self.model.all_by_id[ev.id]
                continue
            self.events.append(ev)
            if ok:
                self.model.add(ev)
        return self.events


def other(loc: str) -> str:
    return "WH2" if loc == "WH1" else "WH1"


def generate(c: Chooser, *, strict: bool = False, policy: str = "reject",
             size: tuple[int, int] = (40, 100)) -> Stream:
    """A stream of 2-4 SKUs, cut into 1-5 posting chunks. `size` bounds the number of
    draws; about a tenth of them are skips, so streams hold ~30-80 events."""
    order = list(PRODUCTS)
    first = order.pop(c.int(0, len(order) - 1))
    count = c.int(1, 3)
    skus = [first]
    for _ in range(count):
        skus.append(order.pop(c.int(0, len(order) - 1)))
    length = c.int(*size)
    gen = Generator(c, strict, allow=policy == "allow")
    events = gen.run(length, tuple(skus))
    chunks: list[int] = []
    left = len(events)
    parts = c.int(1, 5)
    for i in range(parts - 1):
        if left <= 0:
            break
        size_ = c.int(0, left)
        if size_:
            chunks.append(size_)
            left -= size_
    if left:
        chunks.append(left)
    return Stream(events, chunks or [0], tuple(skus), strict, policy, draw_slice_size(c))


SLICE_SIZES = (SLICE_EVENTS_MAX, 1, 2, 3, 7)


def draw_slice_size(c: Chooser) -> int:
    """Small slices put several slices in one transaction, so the rows of one are
    written (on SQLite by the writer thread) while the next is evaluated."""
    return SLICE_SIZES[c.int(0, len(SLICE_SIZES) - 1)]


def streams(strict: bool = False, policy: str = "reject",
            size: tuple[int, int] = (40, 100)):  # -> SearchStrategy[Stream]
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Callable[[Any], Any]) -> Stream:
        return generate(DrawChooser(draw), strict=strict, policy=policy, size=size)

    return build()


def seeded(seed: int, *, strict: bool = False, policy: str = "reject",
           size: tuple[int, int] = (40, 100)) -> Stream:
    return generate(RandomChooser(seed), strict=strict, policy=policy, size=size)
