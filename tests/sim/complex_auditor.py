"""The naive auditor for complex streams: ``auditor.Books`` with the setup of
``complex_setup`` and the issue 5 event types, walked in (date, arrival) order.

What it adds, from SPEC 4/5/10 and decision 0011, with exact fractions:

* bundles: a shipment takes each component (its own method, category and
  counter account) and keeps one document pool per component; invoices and
  returns work on those pools (ar/revenue once, on the bundle);
* kits: assembly takes the components at cost (a kit's worth of each per
  unit) and adds ``extra_cost`` (a total) to the kit's layer, credited to
  applied overhead; disassembly takes the kit at cost and allocates it over
  the components by current unit cost x qty (all zero: by qty), exact weights,
  share by share;
* production: an order's WIP collects issues (at cost) and costs; completing
  takes all of it (dated up to the completion) into the new layer, once;
* landed cost: allocated over the receipts by received value (or qty), share
  by share in refs order; per receipt, a standard SKU's share goes to PPV, a
  pool's is split on hand / consumed as for a bill, a layered SKU's on hand is
  found where the goods are: its own layer and the layers transfers within
  the entity filled from it ("lineage", decision 0011) - so transfers record,
  per layer, the receipt layers (roots) their units came from;
* transfers across entities: sender Dr ic_receivable (transfer price) / Cr
  inventory (cost), ic_gain (difference); receiver Dr inventory / Cr
  ic_payable at the price; the receiver's layer holds the price;
* cost_update: every location of the entity (of all entities without a
  location) revalued by round((new - old) x qty); later receipts enter at the
  new standard;
* revaluation: each layer (or the pool) set to round(qty x unit_cost); a unit
  cost above the current one, or a standard-cost SKU, is INVALID_EVENT.

Journal lines are kept per entity: the account is stored as "ENTITY:code".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from tests.sim import auditor
from tests.sim.auditor import (
    AR,
    COGS,
    GSNI,
    PPV,
    REVENUE,
    ZERO,
    Books,
    Infeasible,
    ShipmentDocs,
    Stock,
    cents,
    round_half_up,
    standing,
    take_pair,
)
from tests.sim.complex_setup import (
    BUNDLES,
    CATEGORIES,
    ENTITY,
    ITEMS,
    KITS,
    LOCATIONS,
    WIP,
    CEv,
    category,
    ic_payable,
    inventory_account,
    parts,
)

APPLIED_OVERHEAD, CLEARING, REVALUATION = "5400", "2200", "5300"
IC_RECEIVABLE, IC_GAIN = "1500", "4900"
MICRO = 10**6
HOLDERS_MAX = 63  # a landed-cost line follows its goods into at most 63 layers


def micro(q: Decimal) -> int:
    return int(q * MICRO)


def div_half_up(numerator: int, denominator: int) -> int:
    return round_half_up(Fraction(numerator, denominator))


def allocate(amount: int, weights: list) -> list[int]:
    """SPEC 5: share = round_half_up(amount left x weight / weights left); the
    last takes what is left. Weights may be exact fractions."""
    left, weights_left = amount, sum(weights)
    shares = []
    for weight in weights:
        if weight == weights_left:
            share = left
        else:
            share = round_half_up(Fraction(left) * weight / weights_left) if weight else 0
        shares.append(share)
        left -= share
        weights_left -= weight
    return shares


class ComplexStock(Stock):
    """A Stock that also records, for layered SKUs, the slices an outflow took and
    the lineage of layers filled by transfers (root layer -> micro-units)."""

    def __init__(self, sku: str, valuation: str, standard: Decimal | None) -> None:
        super().__init__(sku, valuation, standard)
        self.lineage: dict[int, tuple[tuple[int, int], ...]] = {}
        self.slices: list[tuple[int, int]] = []  # (layer origin, micro-units taken), last take

    def _take(self, q: Decimal, prefer: str | None) -> int:
        self.slices = []
        return super()._take(q, prefer)

    def _took(self, origin: int, units: Decimal) -> None:  # type: ignore[override]
        self.slices.append((origin, micro(units)))

    def roots(self) -> tuple[tuple[int, int], ...]:
        """The root layers the last take's units came from: a layer that came by
        transfer passes its own lineage on pro rata (allocated share by share)."""
        out: dict[int, int] = defaultdict(int)
        for origin, taken in self.slices:
            lineage = self.lineage.get(origin)
            if lineage is None:
                out[origin] += taken
                continue
            for (root, _), part in zip(lineage, allocate(taken, [q for _, q in lineage])):
                if part:
                    out[root] += part
        return tuple(sorted(out.items()))

    def units_from(self, root: int) -> list[tuple[int, int]]:
        """(layer origin, micro-units) of the layers here holding goods of `root`."""
        found = []
        for origin, lqty, _ in self.layers:
            if origin == root:
                found.append((root, micro(lqty)))
                continue
            lineage = self.lineage.get(origin)
            if lineage:
                arrived = sum(q for _, q in lineage)
                for r, q in lineage:
                    if r == root and arrived:
                        units = div_half_up(micro(lqty) * q, arrived)
                        if units:
                            found.append((origin, units))
        return found

    def unit_cost(self) -> Fraction:
        """The current unit cost (SPEC 5), in cents per unit, exact."""
        if self.qty > 0:
            return Fraction(self.value) / Fraction(self.qty)
        if self.last_in is not None:
            value, q = self.last_in
            return Fraction(value) / Fraction(q)
        if self.standard is not None:
            return Fraction(self.standard) * 100
        return Fraction(0)


class ComplexBooks(Books):
    """The books of a complex stream (journal lines per entity)."""

    def __init__(self, allow: bool = False) -> None:
        super().__init__(allow)
        self.orders: dict[str, list] = {}  # order -> [wip value, postings, completed date]
        self.wip: list[tuple[int, str, str, int]] = []  # (date, entity, order, amount)
        self.shipment_parts: dict[str, dict[str, ShipmentDocs]] = {}
        self.refs: dict[str, CEv] = {}

    # -- the setup ----------------------------------------------------------------------
    def inventory_account(self, sku: str, loc: str) -> str:
        return inventory_account(sku, loc)

    def method(self, sku: str) -> str:
        return CATEGORIES[category(sku)][0]

    def on_invoice(self, sku: str) -> bool:
        return CATEGORIES[category(sku)][1] == "invoice"

    def standard_cost(self, sku: str) -> Decimal | None:
        text = ITEMS[sku][3] if sku in ITEMS else None
        return Decimal(text) if text is not None else None

    def standard_cost_at(self, sku: str, loc: str) -> Decimal | None:
        return self.key(sku, loc).standard

    def new_stock(self, sku: str, loc: str) -> Stock:
        return ComplexStock(sku, self.method(sku), self.standard_cost(sku))

    def origin(self, ev: CEv) -> int:  # type: ignore[override]
        return ev.n

    # -- posting per entity ---------------------------------------------------------------
    def post(self, ev: CEv, *lines: tuple[str, int]) -> None:  # type: ignore[override]
        self.post_in(ENTITY[ev.loc], ev, *lines)  # type: ignore[index]

    def post_in(self, entity: str, ev: CEv, *lines: tuple[str, int]) -> None:
        if sum(amount for _, amount in lines):
            raise AssertionError(f"auditor bug: unbalanced {ev.id} in {entity}: {lines}")
        for account, amount in lines:
            if amount:
                self.gl.append((ev.date, f"{entity}:{account}", amount))

    def inflow(self, ev: CEv, sku: str, loc: str, q: Decimal, value: int | None,  # type: ignore[override]
               lineage: tuple[tuple[int, int], ...] | None = None) -> int:
        value = super().inflow(ev, sku, loc, q, value)
        if lineage:
            self.key(sku, loc).lineage[ev.n] = lineage  # type: ignore[attr-defined]
        return value

    def revalue(self, ev: CEv, sku: str, loc: str, delta: int) -> None:
        self.moves.append((ev.date, (sku, loc), ZERO, delta))
        self.post_in(ENTITY[loc], ev, (self.inventory_account(sku, loc), delta),
                     (REVALUATION, -delta))

    def apply(self, ev: CEv, refs: dict[str, CEv]) -> None:  # type: ignore[override]
        self.refs = refs
        super().apply(ev, refs)

    # -- bundles: one document pool per component -----------------------------------------
    def _shipment(self, ev: CEv, refs: dict[str, CEv]) -> None:  # type: ignore[override]
        lines, pools = [], {}
        for sku, q in parts(ev.sku, ev.qty):  # type: ignore[arg-type]
            counter = GSNI if self.on_invoice(sku) else COGS
            cost = self.out(ev, sku, ev.loc, q)  # type: ignore[arg-type]
            lines += [(self.inventory_account(sku, ev.loc), -cost), (counter, cost)]  # type: ignore[arg-type]
            pools[sku] = ShipmentDocs(ev, cost, self.on_invoice(sku), q)
        self.post(ev, *lines)
        self.shipment_parts[ev.id] = pools

    def _pools(self, ev: CEv) -> list[tuple[ShipmentDocs, Decimal]]:
        pools = self.shipment_parts[ev.ref]  # type: ignore[index]
        out = []
        for sku, q in parts(ev.sku, abs(ev.qty)):  # type: ignore[arg-type]
            if sku not in pools:
                raise Infeasible("OVER_RETURN", ev, f"{sku} was not shipped by {ev.ref}")
            out.append((pools[sku], q))
        return out

    def _customer_invoice(self, ev: CEv, refs: dict[str, CEv]) -> None:  # type: ignore[override]
        pools = self._pools(ev)
        for docs, q in pools:
            if ev.qty > 0 and docs.invoiced_qty + q > docs.shipped - docs.returned:  # type: ignore[operator]
                raise Infeasible("OVER_RETURN", ev, "invoicing more than shipped - returned")
            if ev.qty < 0 and q > docs.invoiced_qty:  # type: ignore[operator]
                raise Infeasible("OVER_RETURN", ev, "crediting more than invoiced")
        amount = cents(ev.qty, ev.unit_price)  # type: ignore[arg-type]
        lines = [(AR, amount), (REVENUE, -amount)]
        for docs, q in pools:
            if ev.qty > 0:  # type: ignore[operator]
                docs.invoiced_qty += q
                if not docs.on_invoice:
                    continue
                moved = take_pair(docs.uninvoiced, q)
                docs.invoiced[0] += q
                docs.invoiced[1] += moved
            else:
                docs.invoiced_qty -= q
                if not docs.on_invoice:
                    continue
                covered = min(q, docs.returned_uncredited)  # goods already back: nothing moves
                docs.returned_uncredited -= covered
                rest = q - covered
                moved = -take_pair(docs.invoiced, rest)
                docs.uninvoiced[0] += rest
                docs.uninvoiced[1] -= moved
            lines += [(COGS, moved), (GSNI, -moved)]
        self.post(ev, *lines)

    def _sales_return(self, ev: CEv, refs: dict[str, CEv]) -> None:  # type: ignore[override]
        if ev.ref is None:
            raise AssertionError("complex streams return by ref only")
        pools = self._pools(ev)
        for docs, q in pools:
            if docs.returned + q > docs.shipped:
                raise Infeasible("OVER_RETURN", ev, "returning more than shipped")
        lines = []
        for (docs, q), (sku, _) in zip(pools, parts(ev.sku, ev.qty)):  # type: ignore[arg-type]
            docs.returned += q
            if not docs.on_invoice:
                from_gsni, from_cogs = 0, take_pair(docs.uninvoiced, q)
            else:
                first = min(q, docs.uninvoiced[0])
                from_gsni = take_pair(docs.uninvoiced, first)
                from_cogs = take_pair(docs.invoiced, q - first)
                docs.returned_uncredited += q - first
            value = self.inflow(ev, sku, ev.loc, q, from_gsni + from_cogs)  # type: ignore[arg-type]
            lines += [(self.inventory_account(sku, ev.loc), value), (GSNI, -from_gsni),  # type: ignore[arg-type]
                      (COGS, -from_cogs)]
        self.post(ev, *lines)

    # -- transfers ----------------------------------------------------------------------------
    def _transfer(self, ev: CEv, refs: dict[str, CEv]) -> None:  # type: ignore[override]
        sku, source, target = ev.sku, ev.loc, ev.to
        cost = self.out(ev, sku, source, ev.qty)  # type: ignore[arg-type]
        stock = self.key(sku, source)  # type: ignore[arg-type]
        sender, receiver = ENTITY[source], ENTITY[target]  # type: ignore[index]
        # lineage is followed within an entity only (decision 0011): goods sold to the
        # other entity come back at a transfer price, as new goods
        lineage = stock.roots() if stock.layered and sender == receiver else None  # type: ignore[attr-defined]
        if sender == receiver:
            self.inflow(ev, sku, target, ev.qty, cost, lineage)  # type: ignore[arg-type]
            self.post(ev, (self.inventory_account(sku, source), -cost),  # type: ignore[arg-type]
                      (self.inventory_account(sku, target), cost))  # type: ignore[arg-type]
            return
        price = cents(ev.qty, ev.unit_price) if ev.unit_price is not None else cost  # type: ignore[arg-type]
        self.inflow(ev, sku, target, ev.qty, price)  # type: ignore[arg-type]
        self.post_in(sender, ev, (self.inventory_account(sku, source), -cost),  # type: ignore[arg-type]
                     (IC_RECEIVABLE, price), (IC_GAIN, cost - price))
        self.post_in(receiver, ev, (self.inventory_account(sku, target), price),  # type: ignore[arg-type]
                     (ic_payable(receiver), -price))

    # -- kits ---------------------------------------------------------------------------------
    def _assembly(self, ev: CEv, refs: dict[str, CEv]) -> None:
        if ev.sku not in KITS:
            raise Infeasible("INVALID_EVENT", ev, f"{ev.sku} is not a kit")
        loc, lines, total = ev.loc, [], 0
        for component, per in KITS[ev.sku][1]:  # type: ignore[index]
            cost = self.out(ev, component, loc, ev.qty * per)  # type: ignore[arg-type,operator]
            total += cost
            lines.append((self.inventory_account(component, loc), -cost))  # type: ignore[arg-type]
        extra = cents(Decimal(1), ev.extra_cost) if ev.extra_cost is not None else 0
        value = self.inflow(ev, ev.sku, loc, ev.qty, total + extra)  # type: ignore[arg-type]
        lines += [(self.inventory_account(ev.sku, loc), value), (APPLIED_OVERHEAD, -extra)]  # type: ignore[arg-type]
        self.post(ev, *lines)

    def _disassembly(self, ev: CEv, refs: dict[str, CEv]) -> None:
        if ev.sku not in KITS:
            raise Infeasible("INVALID_EVENT", ev, f"{ev.sku} is not a kit")
        loc = ev.loc
        cost = self.out(ev, ev.sku, loc, ev.qty)  # type: ignore[arg-type]
        comps = [(c, ev.qty * per) for c, per in KITS[ev.sku][1]]  # type: ignore[index,operator]
        weights = [self.key(c, loc).unit_cost() * Fraction(q) for c, q in comps]  # type: ignore[arg-type,attr-defined]
        if not any(weights):
            weights = [Fraction(q) for _, q in comps]
        lines = [(self.inventory_account(ev.sku, loc), -cost)]  # type: ignore[arg-type]
        for (component, q), share in zip(comps, allocate(cost, weights)):
            self.inflow(ev, component, loc, q, share)  # type: ignore[arg-type]
            lines.append((self.inventory_account(component, loc), share))  # type: ignore[arg-type]
        self.post(ev, *lines)

    # -- production -----------------------------------------------------------------------------
    def _open_order(self, ev: CEv) -> list:
        order = self.orders.setdefault(ev.order, [0, 0, None])  # type: ignore[arg-type]
        if order[2] is not None:
            raise Infeasible("INVALID_EVENT", ev, f"order {ev.order} completed on {order[2]}")
        return order

    def _production_issue(self, ev: CEv, refs: dict[str, CEv]) -> None:
        order = self._open_order(ev)
        lines, total = [], 0
        for sku, q in ev.items():
            cost = self.out(ev, sku, ev.loc, q)  # type: ignore[arg-type]
            total += cost
            lines += [(self.inventory_account(sku, ev.loc), -cost), (WIP, cost)]  # type: ignore[arg-type]
        order[0] += total
        order[1] += 1
        self.wip.append((ev.date, ENTITY[ev.loc], ev.order, total))  # type: ignore[arg-type,index]
        self.post(ev, *lines)

    def _production_cost(self, ev: CEv, refs: dict[str, CEv]) -> None:
        order = self._open_order(ev)
        amount = cents(Decimal(1), ev.amount)  # type: ignore[arg-type]
        order[0] += amount
        order[1] += 1
        self.wip.append((ev.date, ENTITY[ev.loc], ev.order, amount))  # type: ignore[arg-type,index]
        self.post(ev, (WIP, amount), (APPLIED_OVERHEAD, -amount))

    def _production_complete(self, ev: CEv, refs: dict[str, CEv]) -> None:
        order = self._open_order(ev)
        if not order[1]:
            raise Infeasible("INVALID_EVENT", ev, f"order {ev.order} has no issue or cost")
        value, order[0], order[2] = order[0], 0, ev.date
        self.inflow(ev, ev.sku, ev.loc, ev.qty, value)  # type: ignore[arg-type]
        self.wip.append((ev.date, ENTITY[ev.loc], ev.order, -value))  # type: ignore[arg-type,index]
        self.post(ev, (self.inventory_account(ev.sku, ev.loc), value), (WIP, -value))  # type: ignore[arg-type]

    # -- landed cost -------------------------------------------------------------------------
    def _landed_cost(self, ev: CEv, refs: dict[str, CEv]) -> None:
        receipts = [refs[r] for r in ev.refs]  # type: ignore[union-attr]
        entity = ENTITY[receipts[0].loc]  # type: ignore[index]
        if any(ENTITY[r.loc] != entity for r in receipts):  # type: ignore[index]
            raise Infeasible("INVALID_EVENT", ev, "receipts of two entities")
        by_qty = ev.allocate == "qty"
        weights = [micro(r.qty) if by_qty else cents(r.qty, r.unit_cost) for r in receipts]  # type: ignore[arg-type]
        if sum(weights) <= 0:
            raise Infeasible("INVALID_EVENT", ev, "nothing to allocate over")
        amount = cents(Decimal(1), ev.amount)  # type: ignore[arg-type]
        lines: list[tuple[str, int]] = []
        for receipt, share in zip(receipts, allocate(amount, weights)):
            sku, home = receipt.sku, receipt.loc
            lines.append(("2200", -share))
            if self.method(sku) == "standard":  # type: ignore[arg-type]
                lines.append((PPV, share))
                continue
            received = micro(receipt.qty)  # type: ignore[arg-type]
            stock = self.key(sku, home)  # type: ignore[arg-type]
            if not stock.layered:  # a pool: on hand at the receipt's location, as for a bill
                remaining = max(0, min(received, micro(stock.qty)))
                inventory = div_half_up(share * remaining, received) if remaining else 0
                stock.add_value(None, inventory)  # type: ignore[arg-type]
                if inventory:
                    self.moves.append((ev.date, (sku, home), ZERO, inventory))  # type: ignore[arg-type]
                lines += [(self.inventory_account(sku, home), inventory), (COGS, share - inventory)]  # type: ignore[arg-type]
                continue
            holders = [(home, layer, units)
                       for layer, units in stock.units_from(self.origin(receipt))]  # type: ignore[attr-defined]
            for loc in LOCATIONS:
                if loc != home and ENTITY[loc] == entity and (sku, loc) in self.stock:
                    holders += [(loc, layer, units) for layer, units
                                in self.stock[(sku, loc)].units_from(self.origin(receipt))]  # type: ignore[attr-defined]
            holders = holders[:HOLDERS_MAX]
            on_hand = min(sum(units for _, _, units in holders), received)
            inventory = div_half_up(share * on_hand, received) if on_hand else 0
            if inventory:
                for (loc, layer, _), part in zip(holders, allocate(inventory,
                                                                   [u for _, _, u in holders])):
                    if part:
                        self.key(sku, loc).add_value(layer, part)  # type: ignore[arg-type]
                        self.moves.append((ev.date, (sku, loc), ZERO, part))  # type: ignore[arg-type]
                        lines.append((self.inventory_account(sku, loc), part))  # type: ignore[arg-type]
            lines.append((COGS, share - inventory))
        self.post_in(entity, ev, *lines)

    # -- standard costs and write-downs -----------------------------------------------------
    def _cost_update(self, ev: CEv, refs: dict[str, CEv]) -> None:
        if self.method(ev.sku) != "standard":  # type: ignore[arg-type]
            raise Infeasible("INVALID_EVENT", ev, f"{ev.sku} is not at standard cost")
        new = ev.unit_cost
        for loc in LOCATIONS:
            if ev.loc is not None and ENTITY[loc] != ENTITY[ev.loc]:
                continue
            stock = self.key(ev.sku, loc)  # type: ignore[arg-type]
            old = stock.standard or ZERO
            delta = cents(stock.qty, new - old)  # type: ignore[operator]
            stock.standard = new
            stock.pool_value += delta
            self.revalue(ev, ev.sku, loc, delta)  # type: ignore[arg-type]

    def _revaluation(self, ev: CEv, refs: dict[str, CEv]) -> None:
        if self.method(ev.sku) == "standard":  # type: ignore[arg-type]
            raise Infeasible("INVALID_EVENT", ev, f"{ev.sku} is at standard cost")
        stock = self.key(ev.sku, ev.loc)  # type: ignore[arg-type]
        if Fraction(ev.unit_cost) * 100 > stock.unit_cost():  # type: ignore[arg-type,attr-defined]
            raise Infeasible("INVALID_EVENT", ev, "a revaluation writes down only")
        before = stock.value
        if stock.layered:
            for layer in stock.layers:
                layer[2] = cents(layer[1], ev.unit_cost)  # type: ignore[arg-type]
        else:
            stock.pool_value = cents(stock.pool_qty, ev.unit_cost)  # type: ignore[arg-type]
        self.revalue(ev, ev.sku, ev.loc, stock.value - before)  # type: ignore[arg-type]

    # -- reading ---------------------------------------------------------------------------------
    def entity_trial_balance(self, entity: str, as_of: int | None = None) -> dict[str, int]:
        prefix = entity + ":"
        return {k[len(prefix):]: v for k, v in self.trial_balance(as_of).items()
                if k.startswith(prefix)}

    def entity_valuation(self, entity: str, as_of: int | None = None
                         ) -> dict[tuple[str, str], tuple[Decimal, int]]:
        return {k: v for k, v in self.valuation(as_of).items() if ENTITY[k[1]] == entity}

    def open_wip(self, entity: str, as_of: int | None = None) -> dict[str, int]:
        """WIP per production order of `entity`, as of a date."""
        out: dict[str, int] = defaultdict(int)
        for date, owner, order, amount in self.wip:
            if owner == entity and (as_of is None or date <= as_of):
                out[order] += amount
        return {k: v for k, v in out.items() if v}


def audit(posted: Iterable[CEv]) -> ComplexBooks:
    return auditor.audit(posted, False, ComplexBooks)  # type: ignore[return-value,arg-type]


# -- what posts ----------------------------------------------------------------------------------

DOCUMENT_REFS = {"vendor_bill": "receipt", "purchase_return": "receipt",
                 "customer_invoice": "shipment", "sales_return": "shipment"}


def refers_to(ev: CEv, target_id: str) -> bool:
    return ev.ref == target_id or target_id in (ev.refs or ())


def reference_problem(ev: CEv, posted_ids: dict[str, CEv], reversed_ids: set[str]) -> str | None:
    """The code of the first reference problem of `ev` (SPEC 10), or None."""
    if ev.type == "reversal":
        target = posted_ids.get(ev.ref)  # type: ignore[arg-type]
        if target is None:
            return "UNKNOWN_REFERENCE"
        if target.type == "reversal":
            return "INVALID_EVENT"
        if target.id in reversed_ids:
            return "ALREADY_REVERSED"
        if any(refers_to(e, target.id) and e.type != "reversal" and e.id not in reversed_ids
               for e in posted_ids.values()):
            return "INVALID_EVENT"  # live documents refer to it
        return None
    wanted = ["receipt"] * len(ev.refs or ()) if ev.type == "landed_cost" else (
        [DOCUMENT_REFS[ev.type]] if ev.ref is not None else [])
    for ref, kind in zip(ev.refs or ((ev.ref,) if ev.ref is not None else ()), wanted):
        base = posted_ids.get(ref)  # type: ignore[arg-type]
        if base is None:
            return "UNKNOWN_REFERENCE"
        if base.type != kind:
            return "INVALID_EVENT"
        if base.id in reversed_ids:
            return "UNKNOWN_REFERENCE"
        if ev.date < base.date:
            return "INVALID_EVENT"
    return None


class Predictor:
    """Posts events in arrival order the way the engine must: an event posts
    exactly when its references are good and the history it joins stays valid."""

    def __init__(self) -> None:
        self.posted: list[CEv] = []
        self.posted_ids: dict[str, CEv] = {}
        self.reversed_ids: set[str] = set()
        self.books: ComplexBooks = audit([])

    def problem(self, ev: CEv) -> tuple[str | None, ComplexBooks | None]:
        code = reference_problem(ev, self.posted_ids, self.reversed_ids)
        if code is not None:
            return code, None
        try:
            return None, audit(self.posted + [ev])
        except Infeasible as exc:
            return exc.code, None

    def accept(self, ev: CEv, books: ComplexBooks) -> None:
        self.posted.append(ev)
        self.posted_ids[ev.id] = ev
        if ev.type == "reversal":
            self.reversed_ids.add(ev.ref)  # type: ignore[arg-type]
        self.books = books

    def offer(self, ev: CEv) -> str | None:
        code, books = self.problem(ev)
        if code is None:
            self.accept(ev, books)  # type: ignore[arg-type]
        return code

    def standing(self) -> list[CEv]:
        return standing(self.posted)  # type: ignore[return-value,arg-type]


def predict(events: list[CEv]) -> dict[str, tuple[str, str | None]]:
    """(status, code) per event id, posting `events` in arrival order."""
    predictor = Predictor()
    out: dict[str, tuple[str, str | None]] = {}
    for ev in events:
        code = predictor.offer(ev)
        out[ev.id] = ("posted", None) if code is None else ("exception", code)
    return out


def naive_quantities(posted: Iterable[CEv], as_of: int | None = None
                     ) -> dict[tuple[str, str], Decimal]:
    """Quantity per SKU/location counted from the events alone (reversed ones
    removed): what each type adds and takes, kits and bundles by their BOM."""
    qty: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for ev in sorted(standing(list(posted)), key=lambda e: (e.date, e.n)):  # type: ignore[arg-type]
        if as_of is not None and ev.date > as_of:
            continue
        t, loc = ev.type, ev.loc
        if t in ("receipt", "sales_return", "adjustment", "production_complete"):
            for sku, q in parts(ev.sku, ev.qty):  # type: ignore[arg-type]
                qty[(sku, loc)] += q  # type: ignore[index]
        elif t in ("shipment", "purchase_return", "production_issue"):
            for sku, q in (ev.items() if t == "production_issue" else parts(ev.sku, ev.qty)):  # type: ignore[attr-defined,arg-type]
                qty[(sku, loc)] -= q  # type: ignore[index]
        elif t == "transfer":
            qty[(ev.sku, loc)] -= ev.qty  # type: ignore[index,operator]
            qty[(ev.sku, ev.to)] += ev.qty  # type: ignore[index,operator]
        elif t == "cycle_count":
            qty[(ev.sku, loc)] = ev.qty  # type: ignore[index,assignment]
        elif t in ("assembly", "disassembly"):
            sign = 1 if t == "assembly" else -1
            qty[(ev.sku, loc)] += sign * ev.qty  # type: ignore[index,operator]
            for component, per in KITS[ev.sku][1]:  # type: ignore[index]
                qty[(component, loc)] -= sign * ev.qty * per  # type: ignore[index,operator]
    return {k: q for k, q in qty.items() if q}


__all__ = ["BUNDLES", "ComplexBooks", "Predictor", "audit", "naive_quantities", "predict"]
