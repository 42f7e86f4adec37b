"""Random streams of the issue 5 operations (STYLE: a seeded simulator).

Problem: kits, bundles, production orders, landed costs and intercompany
transfers only show their interplay with backdating when they meet on the
same goods: a receipt backdated before a kit build that a shipment then took,
a landed cost over a receipt whose goods moved on by transfer, an issue
backdated into an order that already completed. A uniform stream rarely
gets there, and a stream of rejections tests nothing. So, as in
``streams.py``, each event is drawn against a model of what is posted - here
the complex auditor itself (``complex_auditor.Predictor``): quantities come
from the auditor's stock as of the event's date and every later date (an
outflow takes no more than stays on hand), documents refer to posted
receipts and shipments, completions follow their orders' postings, and a
share of the events is dated before events already generated on the same
goods (~25% end up backdated).

``strict=True`` keeps only events after which the whole history, in date
order, is still valid - so every event posts in arrival order and in date
order (the order-independence premise) - and makes no reversals. Otherwise
every drawn event is kept: the few that cannot post (an overdraw, a
write-down a backdated receipt made a write-up, a reversal of a receipt a
landed cost refers to) must be rejected with the auditor's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tests.sim.complex_auditor import ComplexBooks, Predictor
from tests.sim.complex_setup import (
    BUNDLES,
    COMPONENTS,
    ENTITY,
    KITS,
    LOCATIONS,
    STOCKED,
    CEv,
    parts,
)
from tests.sim.streams import (
    DAYS,
    YEAR_MONTH,
    Chooser,
    DrawChooser,
    Draws,
    RandomChooser,
    Stream,
    draw_slice_size,
)

Key = tuple[str, str]

# "skip" draws no event: it is choice 0, so Hypothesis shrinks unneeded events away.
GENERAL_WEIGHTS = (
    ("skip", 5), ("receipt", 20), ("shipment", 9), ("customer_invoice", 4), ("sales_return", 4),
    ("vendor_bill", 3), ("purchase_return", 2), ("transfer", 6), ("ic_transfer", 6),
    ("adjustment", 2), ("cycle_count", 2), ("assembly", 7), ("disassembly", 4),
    ("production_issue", 6), ("production_cost", 3), ("production_complete", 4),
    ("landed_cost", 5), ("cost_update", 3), ("revaluation", 3), ("reversal", 5),
)
STRICT_WEIGHTS = tuple((t, w) for t, w in GENERAL_WEIGHTS if t != "reversal")
RECEIVED = ("C1", "C2", "C3", "G1", "S1", "C1", "C2", "C3", "S1", "P1", "G1", "C1")
SHIPPED = STOCKED + ("B1", "B1")
REVALUED = tuple(sku for sku in STOCKED if sku != "S1")
REASONS = ("damage", "found", "shrink")


class ComplexStream(Stream):
    """A generated complex stream (the simple Stream, with its own backdating count)."""

    def backdated_share(self) -> float:
        return backdated_count(self.events) / max(1, len(self.events))  # type: ignore[arg-type]


def keys_of(ev: CEv, by_id: dict[str, CEv]) -> list[Any]:
    """The stock keys (and production orders) an event touches; a document: its ref's."""
    t = ev.type
    if t == "reversal":
        target = by_id.get(ev.ref or "")
        return keys_of(target, by_id) if target is not None else []
    if t in ("vendor_bill", "customer_invoice"):
        ref = by_id.get(ev.ref or "")
        return keys_of(ref, by_id) if ref is not None else []
    if t == "landed_cost":
        return [k for r in ev.refs or () if r in by_id for k in keys_of(by_id[r], by_id)]
    if t == "cost_update":
        return [(ev.sku, loc) for loc in LOCATIONS
                if ev.loc is None or ENTITY[loc] == ENTITY[ev.loc]]
    if t == "transfer":
        return [(ev.sku, ev.loc), (ev.sku, ev.to)]
    if t == "production_cost":
        return [("#order", ev.order)]
    if t == "production_issue":
        return [(sku, ev.loc) for sku, _ in ev.items()] + [("#order", ev.order)]
    if t == "production_complete":
        return [(ev.sku, ev.loc), ("#order", ev.order)]
    if t in ("assembly", "disassembly"):
        return [(ev.sku, ev.loc)] + [(c, ev.loc) for c, _ in KITS[ev.sku][1]]  # type: ignore[index]
    return [(sku, ev.loc) for sku, _ in parts(ev.sku, Decimal(1))]  # type: ignore[arg-type]


def backdated_count(events: list[CEv]) -> int:
    """Events dated before an event that arrived earlier on the same goods (or order)."""
    by_id = {e.id: e for e in events}
    latest: dict[Any, int] = {}
    count = 0
    for ev in events:
        keys = keys_of(ev, by_id)
        if any(latest.get(k, 0) > ev.date for k in keys):
            count += 1
        for k in keys:
            latest[k] = max(latest.get(k, 0), ev.date)
    return count


@dataclass
class Order:
    loc: str
    last: int  # latest date of its issues and costs
    completed: int | None  # date of its completion


class Generator(Draws):
    def __init__(self, c: Chooser, strict: bool) -> None:
        self.c = c
        self.strict = strict
        self.model = Predictor()
        self.events: list[CEv] = []
        self.by_id: dict[str, CEv] = {}
        self.frontier = 1
        self.advance = 35
        self.order_count = 0
        self._profiles: dict[Key, list[tuple[int, Decimal]]] = {}

    # -- small draws (chance, pick, qty, cost: Draws) --------------------------------------
    def loc(self) -> str:
        roll = self.c.int(0, 99)
        return "WH1" if roll < 45 else ("WH2" if roll < 75 else "EU1")

    def cap(self, q: Decimal, room: Decimal, overdraw: int = 0) -> Decimal | None:
        """q limited to room (2 decimals); None when nothing fits. Now and then (general
        streams) not limited: an overdraw the engine must reject."""
        if q <= room or (not self.strict and overdraw and self.chance(overdraw)):
            return q
        capped = room.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        return capped if capped > 0 else None

    def date(self, keys: list[Any], floor: int = 1) -> int:
        """At the moving frontier, or (70% when possible) before events already
        generated on one of `keys`; never before `floor` (a day of the month)."""
        if self.chance(self.advance):
            self.frontier = min(DAYS, self.frontier + 1)
        latest = 0
        for ev in self.events:
            if any(k in keys for k in keys_of(ev, self.by_id)):
                latest = max(latest, ev.date % 100)
        if latest - 1 >= floor and self.chance(70):
            return YEAR_MONTH * 100 + self.c.int(floor, latest - 1)
        return YEAR_MONTH * 100 + max(self.frontier, floor)

    def outflow_date(self, keys: list[Any], takes: list[tuple[str, str, int]]) -> int:
        """A date for an outflow taking `per` of each (sku, loc): as ``date``, but at
        the frontier when nothing could be taken at the date drawn."""
        d = self.date(keys)
        if any(self.headroom((sku, loc), d) < per for sku, loc, per in takes):
            d = max(d, YEAR_MONTH * 100 + self.frontier)
        return d

    # -- the model -------------------------------------------------------------------------------
    @property
    def books(self) -> ComplexBooks:
        return self.model.books

    def profile(self, key: Key) -> list[tuple[int, Decimal]]:
        """(date, quantity on hand at the end of that date) for the key's move dates."""
        if key not in self._profiles:
            per_date: dict[int, Decimal] = {}
            for date, k, q, _ in self.books.moves:
                if k == key and q:
                    per_date[date] = per_date.get(date, Decimal(0)) + q
            out, total = [], Decimal(0)
            for date in sorted(per_date):
                total += per_date[date]
                out.append((date, total))
            self._profiles[key] = out
        return self._profiles[key]

    def on_hand(self, key: Key, d: int) -> Decimal:
        balance = Decimal(0)
        for date, total in self.profile(key):
            if date <= d:
                balance = total
        return balance

    def headroom(self, key: Key, d: int) -> Decimal:
        """What an outflow dated d can take without leaving a later outflow short."""
        room = self.on_hand(key, d)
        for date, total in self.profile(key):
            if date > d:
                room = min(room, total)
        return max(Decimal(0), room)

    def stocked(self, skus: tuple[str, ...], locs: tuple[str, ...] = LOCATIONS) -> Key | None:
        """A (sku, location) with stock now, if any (for a bundle: every component)."""
        found = []
        for sku in skus:
            for loc in locs:
                if all(self.on_hand((c, loc), 99999999) >= per
                       for c, per in parts(sku, Decimal(1))):
                    found.append((sku, loc))
        return self.pick(found) if found else None

    def standing(self, *types: str) -> list[CEv]:
        return [e for e in self.model.standing() if e.type in types]

    def orders(self) -> dict[str, Order]:
        out: dict[str, Order] = {}
        for ev in sorted(self.model.standing(), key=lambda e: (e.date, e.n)):
            if ev.order is None:
                continue
            order = out.setdefault(ev.order, Order(ev.loc, 0, None))  # type: ignore[arg-type]
            if ev.type == "production_complete":
                order.completed = ev.date
            else:
                order.last = max(order.last, ev.date)
        return out

    # -- events ----------------------------------------------------------------------------------
    def make(self, kind: str, n: int) -> CEv | None:
        eid = f"e{n:03d}"
        if kind == "receipt":
            sku, loc = self.pick(RECEIVED), self.loc()
            return CEv(n, eid, kind, self.date([(sku, loc)]), sku, self.qty(), loc,
                       unit_cost=self.cost())
        if kind in ("shipment", "adjustment", "cycle_count", "transfer", "ic_transfer",
                    "disassembly", "revaluation"):
            skus = {"shipment": SHIPPED, "disassembly": tuple(KITS),
                    "revaluation": REVALUED}.get(kind, STOCKED)
            locs = ("WH1", "WH2") if kind == "transfer" else LOCATIONS
            found = None
            if kind == "shipment" and self.chance(45):
                found = self.stocked(tuple(BUNDLES))
            if found is None and self.chance(85):
                found = self.stocked(skus, locs)
            sku, loc = found if found is not None else (self.pick(skus), self.loc())
            to = None
            if kind == "transfer":
                if loc == "EU1":
                    return None
                to = "WH2" if loc == "WH1" else "WH1"
            elif kind == "ic_transfer":
                to = self.pick(("WH1", "WH2")) if loc == "EU1" else "EU1"
            keys = [(c, loc) for c, _ in parts(sku, Decimal(1))] + ([(sku, to)] if to else [])
            d = self.outflow_date(keys, [(c, loc, per) for c, per in parts(sku, Decimal(1))])
            room = min(self.headroom((c, loc), d) / per for c, per in parts(sku, Decimal(1)))
            if kind == "revaluation":
                qty, value = self.books.valuation(d).get((sku, loc), (Decimal(0), 0))
                if qty <= 0 or value <= 0:
                    return None
                unit = (Decimal(value) / 100 / qty * Decimal(self.c.int(40, 99)) / 100)
                unit = unit.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
                return CEv(n, eid, kind, d, sku, None, loc, unit_cost=unit)
            if kind == "cycle_count":
                book = self.on_hand((sku, loc), d)
                counted = max(Decimal(0), book + self.c.int(-3, 3))
                if self.strict:
                    counted = max(counted, book - room)
                return CEv(n, eid, kind, d, sku, counted, loc)
            if kind == "adjustment" and self.chance(40):
                unit_cost = self.cost() if self.chance(50) else None
                return CEv(n, eid, kind, d, sku, self.qty(6), loc, unit_cost=unit_cost,
                           reason=self.pick(REASONS))
            q = self.cap(self.qty(3 if kind == "disassembly" else 10), room, overdraw=10)
            if q is None:
                return None
            if kind == "adjustment":
                return CEv(n, eid, kind, d, sku, -q, loc, reason=self.pick(REASONS))
            if kind in ("transfer", "ic_transfer"):
                price = self.cost() if kind == "ic_transfer" and self.chance(60) else None
                return CEv(n, eid, "transfer", d, sku, q, loc, to=to, unit_price=price)
            return CEv(n, eid, kind, d, sku, q, loc)
        if kind == "assembly":
            ready = [(k, l) for k in KITS for l in LOCATIONS
                     if all(self.on_hand((c, l), 99999999) >= per for c, per in KITS[k][1])]
            kit, loc = (self.pick(ready) if ready and self.chance(85)
                        else (self.pick(tuple(KITS)), self.loc()))
            components = KITS[kit][1]
            d = self.outflow_date([(kit, loc)] + [(c, loc) for c, _ in components],
                                  [(c, loc, per) for c, per in components])
            room = min(self.headroom((c, loc), d) / per for c, per in components)
            q = self.cap(self.qty(4), room, overdraw=10)
            if q is None:
                return None
            extra = self.cost(1, 500) if self.chance(40) else None
            return CEv(n, eid, kind, d, kit, q, loc, extra_cost=extra)
        if kind in ("vendor_bill", "purchase_return"):
            receipts = self.standing("receipt")
            if not receipts:
                return None
            r = self.pick(receipts)
            docs = self.books.receipts[r.id]
            unbilled, billed = docs.unbilled[0], docs.billed[0]
            d = self.date([(r.sku, r.loc)], floor=r.date % 100)
            if kind == "purchase_return":
                room = min(docs.returnable[0], self.headroom((r.sku, r.loc), d))
                q = self.cap(self.qty(max(1, int(r.qty))), room)  # type: ignore[arg-type]
                return None if q is None else CEv(n, eid, kind, d, r.sku, q, r.loc, ref=r.id,
                                                  give_location=self.chance(50))
            if billed > 0 and self.chance(15):  # a vendor credit
                q = self.cap(self.qty(max(1, int(billed))), billed)
                return None if q is None else CEv(n, eid, kind, d, r.sku, -q, r.loc, ref=r.id,
                                                  unit_cost=self.cost(), give_location=False)
            q = unbilled if self.chance(55) else self.cap(self.qty(max(1, int(unbilled))),
                                                          unbilled)
            if q is None or q <= 0:
                return None
            price = r.unit_cost
            if self.chance(55):
                price = max(Decimal(0), price + Decimal(self.c.int(-150, 150)) / 100)  # type: ignore[operator]
            return CEv(n, eid, kind, d, r.sku, q, r.loc, ref=r.id, unit_cost=price,
                       give_location=False)
        if kind in ("customer_invoice", "sales_return"):
            shipments = self.standing("shipment")
            if not shipments:
                return None
            bundles = [e for e in shipments if e.sku in BUNDLES]
            s = self.pick(bundles if bundles and self.chance(60) else shipments)
            pools = self.books.shipment_parts[s.id]
            per = dict(parts(s.sku, Decimal(1)))  # type: ignore[arg-type]
            d = self.date(keys_of(s, self.by_id), floor=s.date % 100)
            if kind == "customer_invoice":
                invoiced = min(p.invoiced_qty / per[c] for c, p in pools.items())
                if invoiced > 0 and self.chance(12):  # a credit note
                    q = self.cap(self.qty(max(1, int(invoiced))), invoiced)
                    return None if q is None else CEv(
                        n, eid, kind, d, s.sku, -q, s.loc, ref=s.id,
                        unit_price=self.cost(100, 3000), give_location=False)
                open_qty = min((p.shipped - p.returned - p.invoiced_qty) / per[c]
                               for c, p in pools.items())
                q = open_qty if self.chance(50) else self.cap(self.qty(max(1, int(open_qty))),
                                                              open_qty)
                if q is None or q <= 0:
                    return None
                return CEv(n, eid, kind, d, s.sku, q, s.loc, ref=s.id,
                           unit_price=self.cost(100, 3000), give_location=False)
            open_qty = min((p.shipped - p.returned) / per[c] for c, p in pools.items())
            q = self.cap(self.qty(max(1, int(s.qty))), open_qty)  # type: ignore[arg-type]
            if q is None:
                return None
            where = s.loc
            if s.loc != "EU1" and self.chance(25):
                where = "WH2" if s.loc == "WH1" else "WH1"
            return CEv(n, eid, kind, d, s.sku, q, where, ref=s.id,
                       give_location=where != s.loc or self.chance(50))
        if kind in ("production_issue", "production_cost", "production_complete"):
            return self.production(kind, n, eid)
        if kind == "landed_cost":
            receipts = self.standing("receipt")
            if not receipts:
                return None
            first = self.pick(receipts)
            same = [r for r in receipts if ENTITY[r.loc] == ENTITY[first.loc] and r is not first]  # type: ignore[index]
            chosen = [first]
            for _ in range(self.c.int(0, 2)):
                if same:
                    chosen.append(same.pop(self.c.int(0, len(same) - 1)))
            keys = [k for r in chosen for k in keys_of(r, self.by_id)]
            d = self.date(keys, floor=max(r.date for r in chosen) % 100)
            allocate = self.pick(("value", "qty", None))
            return CEv(n, eid, kind, d, loc=first.loc, refs=tuple(r.id for r in chosen),
                       amount=self.cost(100, 5000), allocate=allocate)
        if kind == "cost_update":
            loc = self.pick(("WH1", "WH1", "WH2", "EU1", "EU1", None))
            keys = [("S1", l) for l in LOCATIONS if loc is None or ENTITY[l] == ENTITY[loc]]
            return CEv(n, eid, kind, self.date(keys), "S1", None, loc,
                       unit_cost=self.cost(300, 800))
        if kind == "reversal":
            candidates = [e for e in self.events if e.type != "reversal"]
            if not candidates:
                return None
            if self.chance(80):
                standing = {e.id for e in self.model.standing()}
                candidates = [e for e in candidates if e.id in standing] or candidates
            target = self.pick(candidates)
            return CEv(n, eid, kind, YEAR_MONTH * 100 + self.frontier, ref=target.id)
        raise AssertionError(kind)

    def production(self, kind: str, n: int, eid: str) -> CEv | None:
        orders = self.orders()
        if kind == "production_complete":
            ready = [name for name, o in orders.items() if o.completed is None and o.last]
            if not ready:
                return None
            name = self.pick(ready)
            order = orders[name]
            d = self.date([("P1", order.loc), ("#order", name)], floor=order.last % 100)
            return CEv(n, eid, kind, d, "P1", self.qty(5), order.loc, order=name)
        if orders and self.chance(65):
            name = self.pick(sorted(orders))
            order = orders[name]
            loc = order.loc
            if order.completed is not None:  # backdated into a completed order
                last_day = order.completed % 100 - 1
                if last_day < 1:
                    return None
                d = YEAR_MONTH * 100 + self.c.int(1, last_day)
            else:
                d = -1
        else:
            self.order_count += 1
            found = self.stocked(COMPONENTS) if self.chance(85) else None
            name, loc, d = f"MO-{self.order_count}", found[1] if found else self.loc(), -1
        if kind == "production_cost":
            if d < 0:
                d = self.date([("#order", name)])
            return CEv(n, eid, kind, d, loc=loc, order=name, amount=self.cost(100, 3000))
        here = [c for c in COMPONENTS if self.on_hand((c, loc), 99999999) > 0]
        skus = [self.pick(here if here and self.chance(85) else COMPONENTS)]
        if self.chance(40):
            others = [c for c in COMPONENTS if c != skus[0]]
            skus.append(self.pick([c for c in here if c in others] or others))
        if d < 0:
            d = self.outflow_date([(sku, loc) for sku in skus] + [("#order", name)],
                                  [(sku, loc, 1) for sku in skus[:1]])
        lines = []
        for sku in skus:
            q = self.cap(self.qty(6), self.headroom((sku, loc), d), overdraw=8)
            if q is not None:
                lines.append((sku, q))
        if not lines:
            return None
        if len(lines) == 1:
            return CEv(n, eid, kind, d, lines[0][0], lines[0][1], loc, order=name)
        return CEv(n, eid, kind, d, loc=loc, order=name, lines=tuple(lines))

    def run(self, count: int) -> list[CEv]:
        weights = STRICT_WEIGHTS if self.strict else GENERAL_WEIGHTS
        self.advance = max(25, min(85, 1800 // max(1, count)))
        for _ in range(count):
            n = len(self.events)
            kind = self.weighted(weights)
            ev = None if kind == "skip" else self.make(kind, n)
            if ev is None:
                continue
            code, books = self.model.problem(ev)
            if code is None:
                self.model.accept(ev, books)  # type: ignore[arg-type]
                self._profiles.clear()
            elif self.strict:
                continue
            self.events.append(ev)
            self.by_id[ev.id] = ev
        return self.events


def generate(c: Chooser, *, strict: bool = False, size: tuple[int, int] = (30, 70)
             ) -> ComplexStream:
    """A complex stream, cut into 1-4 posting chunks."""
    length = c.int(*size)
    events = Generator(c, strict).run(length)
    chunks: list[int] = []
    left = len(events)
    for _ in range(c.int(1, 4) - 1):
        if left <= 0:
            break
        part = c.int(0, left)
        if part:
            chunks.append(part)
            left -= part
    if left:
        chunks.append(left)
    return ComplexStream(events, chunks or [0], STOCKED + tuple(BUNDLES), strict,  # type: ignore[arg-type]
                         slice_size=draw_slice_size(c))


def in_date_order(stream: Stream) -> ComplexStream:
    """The same events sorted by (date, arrival), renumbered in that order (the
    arrival order of a workspace they are posted to that way), in one chunk."""
    events = sorted(stream.events, key=lambda e: (e.date, e.n))
    renumbered = [replace(e, n=i) for i, e in enumerate(events)]
    return ComplexStream(renumbered, [len(renumbered)], stream.skus, True)  # type: ignore[arg-type]


def streams(strict: bool = False, size: tuple[int, int] = (30, 70)):  # -> SearchStrategy
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Callable[[Any], Any]) -> ComplexStream:
        return generate(DrawChooser(draw), strict=strict, size=size)

    return build()


def seeded(seed: int, *, strict: bool = False, size: tuple[int, int] = (30, 70)) -> ComplexStream:
    return generate(RandomChooser(seed), strict=strict, size=size)
