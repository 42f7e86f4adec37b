"""Evaluation: one resolved event against the states it touches -> movements and GL lines.

Problem: the accounting of an event must be computed the same way when it is
first posted and when a backdated event or a reversal makes the engine
re-run it; two code paths would drift apart. So there is exactly one
function per event type (the table ``HANDLERS``, mirroring SPEC 4), and it
sees the world only through a ``Context`` that hands out positioned states:
the current ones when posting, the historical ones during a replay.

Every stock operation goes through one of four ``Emitter`` helpers (out, in,
value, count). Each changes the state, records a movement carrying what a
replay needs to re-apply it, and emits the inventory line (+value) and the
counter line (-value) on the same amount, so the subledger and the GL are
equal by construction. Document pools (what a bill clears, what an invoice
moves from GSNI to COGS) are checked before any stock is touched, so the
SPEC 10 error order holds.
"""

from __future__ import annotations

import json
import math
from enum import IntEnum
from typing import Callable, NamedTuple, Protocol

from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.events import Event, EventKind, Line, Part
from stockledger.domain.money import UnitCost, allocate, div_half_up, format_qty, take_share
from stockledger.domain.pools import ReceiptPool, ShipmentPool, WipPool
from stockledger.domain.setup import CogsOn, Method, Product, Role
from stockledger.domain.members import members
from stockledger.domain.states import LAYERED, Settlement, Shortfall, StockState, pack_origin

ROLE, METHOD, COGS_ON = members(Role), members(Method), members(CogsOn)  # see domain.members
KIND, CODE = members(EventKind), members(ErrorCode)

SLOTS_PER_LINE = 64


def op_number(line_index: int, slot: int) -> int:
    return line_index * SLOTS_PER_LINE + slot


class Op(IntEnum):
    """What a movement does to its stock state (what a replay re-applies)."""

    IN = 1  # a new layer (or pool inflow) of qty at value
    OUT = 2  # take qty in the method's order (preferring layer_ref)
    VALUE = 3  # add value to layer layer_ref (or the pool): a bill's price difference
    COUNT = 4  # set the quantity to param_qty; the variance is an IN or an OUT
    STANDARD = 5  # a new standard cost param_value/param_qty; the pool is revalued
    REVALUE = 6  # every layer written down to the unit cost param_value/param_qty


class Move(NamedTuple):
    """A subledger movement, in the column order of its table. `event_id` is the
    event it belongs to; `producer_id` the event whose evaluation computed it
    (another event for a settlement)."""

    event_id: int
    op_no: int
    producer_id: int
    kind: str  # post (the event's own), recost (a later correction)
    op: int  # an Op
    date: int
    sku_id: int
    location_id: int
    entity_id: int
    account_id: int
    counter_id: int | None
    qty: int
    value: int
    layer_ref: int | None = None
    lot: str | None = None
    param_qty: int | None = None
    param_value: int | None = None
    lineage: str | None = None  # transfer-in: JSON [[receipt layer origin, qty], ...]


class GLLine(NamedTuple):
    """A journal line, in the column order of its table (the entry id follows);
    amount > 0 is a debit. `op_no` is None for fixed amounts (AP, revenue...)
    that no replay can change."""

    event_id: int
    producer_id: int
    date: int
    entity_id: int
    account_id: int
    amount: int
    sku_id: int | None
    location_id: int | None
    op_no: int | None


_IN, _OUT, _VALUE, _COUNT = int(Op.IN), int(Op.OUT), int(Op.VALUE), int(Op.COUNT)
# a record from a tuple of all its fields, without NamedTuple's keyword-handling __new__
# (a third of the cost; the hot paths build several records an event)
_new = tuple.__new__
_STANDARD, _REVALUE = int(Op.STANDARD), int(Op.REVALUE)


class Context(Protocol):
    """Positioned states for an evaluation (current ones, or a replay's)."""

    allow_negative: bool

    def stock(self, product: Product, location_id: int) -> StockState: ...

    def receipt_pool(self, receipt: Event, line_index: int) -> ReceiptPool: ...

    def shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool: ...

    def wip_pool(self, order: str) -> WipPool: ...

    def recorded_out(self, event_id: int, op_no: int) -> int:
        """The cost an outflow took when it was posted (folding pools)."""

    def peek_stock(self, product: Product, location_id: int) -> StockState | None:
        """The state of a SKU at a location if it ever had stock, else None."""


class Emitter:
    """Collects the movements and lines of one evaluation and remembers the
    states it touched, so a rejected event can be undone (``rollback``)."""

    __slots__ = ("ctx", "event_id", "date", "moves", "lines", "_saved")

    def __init__(self, ctx: Context, event_id: int, date: int) -> None:
        self.ctx = ctx
        self.event_id = event_id
        self.date = date
        self.moves: list[Move] = []
        self.lines: list[GLLine] = []
        self._saved: dict[int, tuple[object, tuple]] = {}

    # -- state access with undo ---------------------------------------------
    def _touch(self, state: StockState | ReceiptPool | ShipmentPool):
        key = id(state)
        if key not in self._saved:
            self._saved[key] = (state, state.snapshot())
        return state

    def stock(self, product: Product, location_id: int) -> StockState:
        state = self.ctx.stock(product, location_id)
        saved = self._saved
        key = id(state)
        if key not in saved:
            saved[key] = (state, state.snapshot())
        return state

    def receipt_pool(self, receipt: Event, line_index: int) -> ReceiptPool:
        return self._touch(self.ctx.receipt_pool(receipt, line_index))

    def peek_stock(self, product: Product, location_id: int) -> StockState | None:
        state = self.ctx.peek_stock(product, location_id)
        return self._touch(state) if state is not None else None

    def shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool:
        return self._touch(self.ctx.shipment_pool(shipment, op_no))

    def wip_pool(self, order: str) -> WipPool:
        return self._touch(self.ctx.wip_pool(order))

    def rollback(self) -> None:
        for state, snap in self._saved.values():
            state.restore(snap)
        self._saved.clear()
        self.moves.clear()
        self.lines.clear()

    def touched(self) -> list[object]:
        return [state for state, _ in self._saved.values()]

    # -- lines ------------------------------------------------------------------
    def line(self, account_id: int | None, amount: int, entity_id: int, sku_id: int | None,
             location_id: int | None, op_no: int | None) -> None:
        if amount and account_id is not None:
            self.lines.append(_new(GLLine, (self.event_id, self.event_id, self.date, entity_id,
                                            account_id, amount, sku_id, location_id, op_no)))

    # -- the four stock operations ------------------------------------------------
    def out(self, op_no: int, product: Product, location_id: int, qty: int, entity_id: int,
            account_id: int, counter_id: int | None, *, prefer: int | None = None,
            lot: str | None = None, shortfall_ok: bool = False, gl: bool = True,
            slices: list[tuple[int, int, int]] | None = None) -> int:
        """Take qty out at cost; returns the (positive) cost taken."""
        state = self.stock(product, location_id)
        taken_qty, value = state.take(qty, prefer, lot, slices)
        short = qty - taken_qty
        if short:
            if not (shortfall_ok and self.ctx.allow_negative):
                have = format_qty(taken_qty)
                raise Rejection(CODE.INSUFFICIENT_STOCK,
                                f"{product.sku}" + (f" lot {lot}" if lot else "")
                                + f": {have} on hand at this date, {format_qty(qty)} needed")
            short_value = state.current_cost().value_of(short)
            state.add_shortfall(Shortfall(self.event_id, op_no, short, short_value, account_id,
                                          counter_id, entity_id, lot))
            value += short_value
        event_id, date, sku = self.event_id, self.date, product.id
        if date > state.last_date:
            state.last_date = date
        self.moves.append(_new(Move, (event_id, op_no, event_id, "post", _OUT, date, sku,
                                      location_id, entity_id, account_id, counter_id, -qty,
                                      -value, prefer, lot, None, None, None)))
        if gl and value:
            append = self.lines.append
            append(_new(GLLine, (event_id, event_id, date, entity_id, account_id, -value, sku,
                                 location_id, op_no)))
            if counter_id is not None:
                append(_new(GLLine, (event_id, event_id, date, entity_id, counter_id, value, sku,
                                     location_id, op_no)))
        return value

    def inflow(self, op_no: int, product: Product, location_id: int, qty: int, value: int | None,
               entity_id: int, account_id: int, counter_id: int | None, *,
               lot: str | None = None, gl: bool = True,
               lineage: tuple[tuple[int, int], ...] | None = None) -> int:
        """A new layer of qty at value (None: at the current unit cost); returns the value."""
        state = self.stock(product, location_id)
        if value is None:
            value = state.current_cost().value_of(qty)
        event_id, date, sku = self.event_id, self.date, product.id
        settlements = state.add(qty, value, pack_origin(event_id, op_no), date, lot, lineage)
        if date > state.last_date:
            state.last_date = date
        self.moves.append(_new(Move, (event_id, op_no, event_id, "post", _IN, date, sku,
                                      location_id, entity_id, account_id, counter_id, qty, value,
                                      None, lot, None, None,
                                      json.dumps(lineage) if lineage else None)))
        if gl and value:
            append = self.lines.append
            append(_new(GLLine, (event_id, event_id, date, entity_id, account_id, value, sku,
                                 location_id, op_no)))
            if counter_id is not None:
                append(_new(GLLine, (event_id, event_id, date, entity_id, counter_id, -value, sku,
                                     location_id, op_no)))
        if settlements:
            self._settle(settlements, sku, location_id)
        return value

    def _settle(self, settlements: list[Settlement], sku_id: int, location_id: int) -> None:
        """Each filled shortfall: a recost on the outflow, dated at this inflow."""
        for settlement in settlements:
            diff = settlement.difference
            if not diff:
                continue
            short = settlement.shortfall
            self.moves.append(Move(short.event_id, short.op_no, self.event_id, "recost", _OUT,
                                   self.date, sku_id, location_id, short.entity_id,
                                   short.account_id, short.counter_id, 0, -diff, None,
                                   short.lot))
            for account_id, amount in ((short.account_id, -diff), (short.counter_id, diff)):
                if account_id is not None:
                    self.lines.append(GLLine(short.event_id, self.event_id, self.date,
                                             short.entity_id, account_id, amount, sku_id,
                                             location_id, short.op_no))

    def value(self, op_no: int, product: Product, location_id: int, origin: int,
              difference: int, received_qty: int, entity_id: int, account_id: int,
              counter_id: int) -> int:
        """A bill's price difference: the share of what is still on hand raises
        that receipt's layer (or the pool); the rest goes to the counter (COGS)."""
        state = self.stock(product, location_id)
        if state.layered:
            remaining = state.remaining_of(origin)
        else:
            remaining = max(0, min(received_qty, state.qty))
        share = div_half_up(difference * remaining, received_qty) if remaining else 0
        state.add_value(origin, share)
        if self.date > state.last_date:
            state.last_date = self.date
        self.moves.append(_new(Move, (self.event_id, op_no, self.event_id, "post", _VALUE,
                                      self.date, product.id, location_id, entity_id, account_id,
                                      counter_id, 0, share, origin, None, received_qty,
                                      difference, None)))
        self.line(account_id, share, entity_id, product.id, location_id, op_no)
        self.line(counter_id, difference - share, entity_id, product.id, location_id, op_no)
        return share

    def add_to_layer(self, op_no: int, product: Product, location_id: int, origin: int,
                     amount: int, entity_id: int, account_id: int) -> None:
        """Raise one layer's value (a landed cost's share of goods that moved on)."""
        state = self.stock(product, location_id)
        state.add_value(origin if state.layered else None, amount)
        if self.date > state.last_date:
            state.last_date = self.date
        self.moves.append(Move(self.event_id, op_no, self.event_id, "post", _VALUE, self.date,
                               product.id, location_id, entity_id, account_id, None, 0, amount,
                               origin, None, None, amount))
        self.line(account_id, amount, entity_id, product.id, location_id, op_no)

    def mark(self, op_no: int, product: Product, location_id: int, entity_id: int,
             account_id: int) -> None:
        """A movement of nothing: records that this event's amounts depend on the
        stock here at its date, so that a replay of this SKU and location re-runs it."""
        state = self.stock(product, location_id)
        if self.date > state.last_date:
            state.last_date = self.date
        self.moves.append(Move(self.event_id, op_no, self.event_id, "post", _VALUE, self.date,
                               product.id, location_id, entity_id, account_id, None, 0, 0))

    def count(self, op_no: int, product: Product, location_id: int, counted: int,
              entity_id: int, account_id: int, counter_id: int, *, lot: str | None) -> int:
        """A count: the variance against book is taken out or added at current cost."""
        state = self.stock(product, location_id)
        variance = counted - state.book_qty(lot)
        value = 0
        settlements: list[Settlement] = []
        if variance < 0:
            taken_qty, value = state.take(-variance, None, lot)
            if taken_qty != -variance:
                raise InvariantViolation("a count took more than the book quantity")
            value = -value
        elif variance > 0:
            value = state.current_cost().value_of(variance)
            settlements = state.add(variance, value, pack_origin(self.event_id, op_no),
                                    self.date, lot)
        if self.date > state.last_date:
            state.last_date = self.date
        self.moves.append(Move(self.event_id, op_no, self.event_id, "post", _COUNT, self.date,
                               product.id, location_id, entity_id, account_id, counter_id,
                               variance, value, None, lot, counted))
        self.line(account_id, value, entity_id, product.id, location_id, op_no)
        self.line(counter_id, -value, entity_id, product.id, location_id, op_no)
        self._settle(settlements, product.id, location_id)
        return variance


    def standard(self, op_no: int, product: Product, location_id: int, entity_id: int,
                 account_id: int, counter_id: int, unit: UnitCost) -> int:
        """A new standard cost; the on-hand pool is revalued by round((new - old) x qty)."""
        state = self.stock(product, location_id)
        delta = state.set_standard(unit)
        self._revalued(op_no, product, location_id, entity_id, account_id, counter_id, unit,
                       delta, _STANDARD, state)
        return delta

    def revalue(self, op_no: int, product: Product, location_id: int, entity_id: int,
                account_id: int, counter_id: int, unit: UnitCost) -> int:
        """A write-down of every layer (or the pool) to `unit`; never up."""
        state = self.stock(product, location_id)
        current = state.current_cost()
        if unit.value_minor * current.qty_micro > current.value_minor * unit.qty_micro:
            raise Rejection(CODE.INVALID_EVENT,
                            f"{product.sku}: revaluation writes down only; the current unit cost "
                            f"is below the one given")
        delta = state.revalue_to(unit)
        self._revalued(op_no, product, location_id, entity_id, account_id, counter_id, unit,
                       delta, _REVALUE, state)
        return delta

    def _revalued(self, op_no: int, product: Product, location_id: int, entity_id: int,
                  account_id: int, counter_id: int, unit: UnitCost, delta: int, op: int,
                  state: StockState) -> None:
        if self.date > state.last_date:
            state.last_date = self.date
        self.moves.append(Move(self.event_id, op_no, self.event_id, "post", op, self.date,
                               product.id, location_id, entity_id, account_id, counter_id, 0,
                               delta, None, None, unit.qty_micro, unit.value_minor))
        self.line(account_id, delta, entity_id, product.id, location_id, op_no)
        self.line(counter_id, -delta, entity_id, product.id, location_id, op_no)


# ---------------------------------------------------------------------------
# One handler per event type (SPEC 4).
# ---------------------------------------------------------------------------

KIT_SLOT = SLOTS_PER_LINE - 1  # the kit's own operation in an assembly line

def _inventory_part(line: Line) -> Part:
    return line.parts[0]


def _receipt(ev: Event, em: Emitter) -> None:
    """Dr inventory / Cr GRNI at qty x unit_cost; standard cost: inventory at
    standard, the difference to PPV."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        acc = part.accounts
        actual = line.amount or 0
        value = actual
        if part.product.method is METHOD.STANDARD:
            standard = em.ctx.stock(part.product, loc).standard
            value = standard.value_of(part.qty) if standard is not None else actual
        em.inflow(op_number(line.index, 0), part.product, loc, part.qty, value, entity,
                  acc[ROLE.INVENTORY], None, lot=line.lot)
        em.line(acc[ROLE.GRNI], -actual, entity, part.product.id, loc, None)
        if value != actual:
            em.line(acc[ROLE.PPV], actual - value, entity, part.product.id, loc, None)


def _opening_balance(ev: Event, em: Emitter) -> None:
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        amount = line.amount or 0
        em.inflow(op_number(line.index, 0), part.product, loc, part.qty, amount, entity,
                  part.accounts[ROLE.INVENTORY], None, lot=line.lot)
        em.line(part.accounts[ROLE.OPENING_BALANCE], -amount, entity, part.product.id, loc, None)


def _receipt_pool(em: Emitter, receipt: Event, line: Line) -> ReceiptPool:
    return em.receipt_pool(receipt, line.ref_index)  # type: ignore[arg-type]


def _vendor_bill(ev: Event, em: Emitter) -> None:
    """Dr GRNI (what the receipt credited, pro rata) / Cr AP (billed); the
    difference split between what is still on hand (inventory) and what was
    consumed (COGS), or all to PPV under standard cost. Negative qty: a vendor
    credit, which first covers returned units (GRNI back at what the return
    debited, the difference to PPV)."""
    receipt: Event = ev.ref  # type: ignore[assignment]
    entity = ev.entity.id
    loc = receipt.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        acc = part.accounts
        sku = part.product.id
        op = op_number(line.index, 0)
        pool = _receipt_pool(em, receipt, line)
        ap_total = abs(line.amount or 0)
        origin = pack_origin(receipt.id, op_number(line.ref_index, 0))  # type: ignore[arg-type]
        if line.qty > 0:
            cleared = pool.bill(line.qty)
            em.line(acc[ROLE.GRNI], cleared, entity, sku, loc, op)
            em.line(acc[ROLE.AP], -ap_total, entity, sku, loc, None)
            difference = ap_total - cleared
        else:
            qty = -line.qty
            covered, grni_back, rest, put_back = pool.credit(qty)
            ap_covered = take_share(ap_total, covered, qty)
            em.line(acc[ROLE.AP], ap_total, entity, sku, loc, None)
            em.line(acc[ROLE.GRNI], -(grni_back + put_back), entity, sku, loc, op)
            difference = put_back - (ap_total - ap_covered)
            covered_ppv = grni_back - ap_covered
            if not rest or part.product.method is METHOD.STANDARD:
                em.line(acc[ROLE.PPV], covered_ppv + (difference if rest else 0), entity, sku,
                        loc, op)
                continue
            em.line(acc[ROLE.PPV], covered_ppv, entity, sku, loc, op)
        if part.product.method is METHOD.STANDARD:
            em.line(acc[ROLE.PPV], difference, entity, sku, loc, op)
        else:
            em.value(op + 1, part.product, loc, origin, difference, pool.received_qty, entity,
                     acc[ROLE.INVENTORY], acc[ROLE.COGS])


def _purchase_return(ev: Event, em: Emitter) -> None:
    """Dr GRNI (at the receipt's received rate), PPV (difference) / Cr inventory
    (cost, from that receipt's layer first). Without ref: GRNI at cost."""
    receipt = ev.ref
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        acc = part.accounts
        op = op_number(line.index, 0)
        if receipt is None:
            em.out(op, part.product, loc, part.qty, entity, acc[ROLE.INVENTORY], acc[ROLE.GRNI],
                   lot=line.lot)
            continue
        prefer = None
        if receipt.location is not None and receipt.location.id == loc:
            prefer = pack_origin(receipt.id, op_number(line.ref_index, 0))  # type: ignore[arg-type]
        pool = _receipt_pool(em, receipt, line)
        grni = pool.purchase_return(part.qty)
        cost = em.out(op, part.product, loc, part.qty, entity, acc[ROLE.INVENTORY], None,
                      prefer=prefer, lot=line.lot)
        em.line(acc[ROLE.GRNI], grni, entity, part.product.id, loc, op)
        em.line(acc[ROLE.PPV], cost - grni, entity, part.product.id, loc, op)


def _shipment(ev: Event, em: Emitter) -> None:
    """Dr COGS (GSNI under cogs_on: invoice) / Cr inventory at cost; a bundle
    ships its components."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        for part in line.parts:
            acc = part.accounts
            counter = acc[ROLE.GSNI] if part.product.category.cogs_on is COGS_ON.INVOICE \
                else acc[ROLE.COGS]
            em.out(op_number(line.index, part.slot), part.product, loc, part.qty, entity,
                   acc[ROLE.INVENTORY], counter, lot=line.lot, shortfall_ok=True)


def _shipment_parts(shipment: Event, line: Line) -> tuple[Line, list[tuple[Part, Part]]]:
    """The shipment line a document line refers to, and its parts paired with
    the document's parts (same product, same order)."""
    shipped = shipment.lines[line.ref_index]  # type: ignore[index]
    pairs = []
    for part in line.parts:
        match = next((p for p in shipped.parts if p.product.id == part.product.id), None)
        if match is None:
            raise Rejection(CODE.INVALID_EVENT, f"{line.product.sku}: component "
                            f"{part.product.sku} was not part of shipment {shipment.ext_id!r}")
        pairs.append((part, match))
    return shipped, pairs


def _customer_invoice(ev: Event, em: Emitter) -> None:
    """Dr AR / Cr revenue at qty x unit_price; under cogs_on: invoice also
    Dr COGS / Cr GSNI for the shipment's cost of the invoiced qty. Negative
    qty: a credit note (moves cost back for units not already returned)."""
    shipment: Event = ev.ref  # type: ignore[assignment]
    entity = ev.entity.id
    loc = shipment.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        shipped, pairs = _shipment_parts(shipment, line)
        amount = line.amount or 0
        em.line(line.accounts[ROLE.AR], amount, entity, line.product.id, loc, None)
        em.line(line.accounts[ROLE.REVENUE], -amount, entity, line.product.id, loc, None)
        for part, shipped_part in pairs:
            pool = em.shipment_pool(shipment, op_number(shipped.index, shipped_part.slot))
            moved = pool.invoice(part.qty if line.qty > 0 else -part.qty)
            if pool.on_invoice:
                op = op_number(line.index, part.slot)
                em.line(part.accounts[ROLE.COGS], moved, entity, part.product.id, loc, op)
                em.line(part.accounts[ROLE.GSNI], -moved, entity, part.product.id, loc, op)


def _sales_return(ev: Event, em: Emitter) -> None:
    """Dr inventory / Cr COGS (GSNI while not invoiced) at the shipment's own
    cost of the returned qty, as a new layer; without ref at current cost."""
    shipment = ev.ref
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        if shipment is None:
            for part in line.parts:
                op = op_number(line.index, 2 * part.slot)
                em.inflow(op + 1, part.product, loc, part.qty, None, entity,
                          part.accounts[ROLE.INVENTORY], part.accounts[ROLE.COGS], lot=line.lot)
            continue
        shipped, pairs = _shipment_parts(shipment, line)
        for part, shipped_part in pairs:
            op = op_number(line.index, 2 * part.slot)
            pool = em.shipment_pool(shipment, op_number(shipped.index, shipped_part.slot))
            from_gsni, from_cogs = pool.sales_return(part.qty)
            acc = part.accounts
            em.line(acc.get(ROLE.GSNI), -from_gsni, entity, part.product.id, loc, op)
            em.line(acc[ROLE.COGS], -from_cogs, entity, part.product.id, loc, op)
            em.inflow(op + 1, part.product, loc, part.qty, from_gsni + from_cogs, entity,
                      acc[ROLE.INVENTORY], None, lot=line.lot)


def _transfer(ev: Event, em: Emitter) -> None:
    """Dr inventory at `to` / Cr inventory at `from` at cost; one layer per line
    at the destination. No GL lines when both locations share one account.
    Between entities: the sender Dr IC receivable at the transfer price / Cr
    inventory at cost and IC gain (the difference); the receiver Dr inventory /
    Cr IC payable at the transfer price (default: cost)."""
    entity = ev.entity.id
    source = ev.location.id  # type: ignore[union-attr]
    destination = ev.to_location.id  # type: ignore[union-attr]
    receiver = ev.to_location.entity.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        sku = part.product.id
        account_from = part.accounts[ROLE.INVENTORY]
        to_accounts = ev.to_accounts[line.index]
        account_to = to_accounts[ROLE.INVENTORY]
        op = op_number(line.index, 0)
        slices: list[tuple[int, int, int]] | None = [] if part.product.method in LAYERED \
            else None
        if receiver == entity:
            gl = account_from != account_to
            cost = em.out(op, part.product, source, part.qty, entity, account_from, None,
                          lot=line.lot, gl=gl, slices=slices)
            lineage = em.stock(part.product, source).roots(slices) if slices else None
            em.inflow(op + 1, part.product, destination, part.qty, cost, entity, account_to,
                      None, lot=line.lot, gl=gl, lineage=lineage)
            continue
        cost = em.out(op, part.product, source, part.qty, entity, account_from, None,
                      lot=line.lot)
        # goods that leave the entity are sold (at the transfer price): the
        # receiver's layer starts a lineage of its own (decision 0011)
        price = line.amount if line.amount is not None else cost
        em.line(part.accounts[ROLE.IC_RECEIVABLE], price, entity, sku, source, op)
        em.line(part.accounts[ROLE.IC_GAIN], cost - price, entity, sku, source, op)
        em.inflow(op + 1, part.product, destination, part.qty, price, receiver, account_to, None,
                  lot=line.lot)
        em.line(to_accounts[ROLE.IC_PAYABLE], -price, receiver, sku, destination, op + 1)


def _adjustment(ev: Event, em: Emitter) -> None:
    """qty < 0: Dr adjustment (by reason) / Cr inventory at cost; qty > 0 the
    reverse at unit_cost (default: the current unit cost)."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        acc = part.accounts
        op = op_number(line.index, 0)
        if line.qty < 0:
            em.out(op, part.product, loc, part.qty, entity, acc[ROLE.INVENTORY],
                   acc[ROLE.INVENTORY_ADJUSTMENT], lot=line.lot, shortfall_ok=True)
        else:
            em.inflow(op, part.product, loc, part.qty, line.amount, entity, acc[ROLE.INVENTORY],
                      acc[ROLE.INVENTORY_ADJUSTMENT], lot=line.lot)


def _cycle_count(ev: Event, em: Emitter) -> None:
    """The counted quantity replaces the book quantity; the variance is adjusted
    with reason cycle_count."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        acc = part.accounts
        em.count(op_number(line.index, 0), part.product, loc, part.qty, entity,
                 acc[ROLE.INVENTORY], acc[ROLE.INVENTORY_ADJUSTMENT], lot=line.lot)


def _assembly(ev: Event, em: Emitter) -> None:
    """Dr inventory (kit) / Cr inventory (components at cost), applied overhead
    (`extra_cost`, a total for the event, spread over the lines by kit qty)."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    extras = allocate(ev.extra_cost, [line.qty for line in ev.lines]) if ev.extra_cost \
        else [0] * len(ev.lines)
    for line, extra in zip(ev.lines, extras):
        kit = line.product
        total = 0
        for part in line.parts:
            total += em.out(op_number(line.index, part.slot), part.product, loc, part.qty, entity,
                            part.accounts[ROLE.INVENTORY], None, lot=line.lot)
        em.inflow(op_number(line.index, KIT_SLOT), kit, loc, line.qty, total + extra, entity,
                  line.accounts[ROLE.INVENTORY], None, lot=line.lot)
        em.line(line.accounts.get(ROLE.APPLIED_OVERHEAD), -extra, entity, kit.id, loc, None)


def _disassembly(ev: Event, em: Emitter) -> None:
    """Dr inventory (components) / Cr inventory (kit at cost); the kit's cost is
    allocated over the components by their current unit cost x qty (all zero:
    by qty)."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        kit = line.product
        cost = em.out(op_number(line.index, KIT_SLOT), kit, loc, line.qty, entity,
                      line.accounts[ROLE.INVENTORY], None, lot=line.lot)
        weights = _cost_weights([em.stock(part.product, loc).current_cost()
                                 for part in line.parts], [part.qty for part in line.parts])
        if not any(weights):
            weights = [part.qty for part in line.parts]
        for part, share in zip(line.parts, allocate(cost, weights)):
            em.inflow(op_number(line.index, part.slot), part.product, loc, part.qty, share,
                      entity, part.accounts[ROLE.INVENTORY], None, lot=line.lot)


def _cost_weights(costs: list[UnitCost], qtys: list[int]) -> list[int]:
    """Unit cost x qty per part, exact (not rounded to the cent): integers over a
    common denominator, so that ``allocate`` splits by the true proportions."""
    common = math.lcm(*(cost.qty_micro for cost in costs))
    return [cost.value_minor * qty * (common // cost.qty_micro)
            for cost, qty in zip(costs, qtys)]


def _production_issue(ev: Event, em: Emitter) -> None:
    """Dr WIP / Cr inventory: materials issued to an order, at cost."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    pool = em.wip_pool(ev.order)  # type: ignore[arg-type]
    pool.ensure_open()
    for line in ev.lines:
        part = _inventory_part(line)
        cost = em.out(op_number(line.index, 0), part.product, loc, part.qty, entity,
                      part.accounts[ROLE.INVENTORY], part.accounts[ROLE.WIP], lot=line.lot)
        pool.add(cost)


def _production_cost(ev: Event, em: Emitter) -> None:
    """Dr WIP / Cr applied overhead: labour and overhead charged to an order."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    amount = ev.amount or 0
    em.wip_pool(ev.order).add(amount)  # type: ignore[arg-type]
    em.line(ev.accounts[ROLE.WIP], amount, entity, None, loc, None)
    em.line(ev.accounts[ROLE.APPLIED_OVERHEAD], -amount, entity, None, loc, None)


def _production_complete(ev: Event, em: Emitter) -> None:
    """Dr inventory (finished goods) / Cr WIP: all WIP of the order up to this
    date; the new layer carries it (several lines share it by qty)."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    value = em.wip_pool(ev.order).complete(ev.date)  # type: ignore[arg-type]
    shares = allocate(value, [line.qty for line in ev.lines]) if value else [0] * len(ev.lines)
    for line, share in zip(ev.lines, shares):
        part = _inventory_part(line)
        em.inflow(op_number(line.index, 0), part.product, loc, part.qty, share, entity,
                  part.accounts[ROLE.INVENTORY], part.accounts[ROLE.WIP], lot=line.lot)


def _landed_cost(ev: Event, em: Emitter) -> None:
    """Cr landed-cost clearing; the amount is allocated over the receipts' lines by
    received value (or qty), then split as for a bill: the share of the goods
    still on hand (at the receipt's location, or wherever transfers took them
    within the entity) raises those layers (inventory), the rest goes to COGS;
    a standard-cost SKU's share goes to PPV."""
    entity = ev.entity.id
    weights = [line.amount if ev.allocate != "qty" else line.qty for line in ev.lines]
    if sum(weights) <= 0:
        raise Rejection(CODE.INVALID_EVENT, "the receipts have nothing to allocate over "
                        "(no received value or qty)")
    for line, share in zip(ev.lines, allocate(ev.amount or 0, weights)):
        receipt: Event = line.ref_event  # type: ignore[assignment]
        home = receipt.location.id  # type: ignore[union-attr]
        acc = line.accounts
        product = line.product
        op = op_number(line.index, 0)
        em.line(acc[ROLE.LANDED_COST_CLEARING], -share, entity, product.id, home, None)
        if product.method is METHOD.STANDARD:
            em.line(acc[ROLE.PPV], share, entity, product.id, home, op)
            continue
        origin = pack_origin(receipt.id, op_number(line.ref_index, 0))  # type: ignore[arg-type]
        if product.method not in LAYERED:  # a pool keeps no lineage: as for a bill
            em.value(op, product, home, origin, share, line.qty, entity, acc[ROLE.INVENTORY],
                     acc[ROLE.COGS])
            continue
        holders = [(home, layer, units) for layer, units in
                   em.stock(product, home).units_from(origin)]
        looked = [home]  # where the goods may be: the split depends on these states
        for location in ev.scope:
            if location.id != home:
                state = em.peek_stock(product, location.id)
                if state is not None:
                    looked.append(location.id)
                    holders += [(location.id, layer, units)
                                for layer, units in state.units_from(origin)]
        holders = holders[:SLOTS_PER_LINE - 1]
        on_hand = min(sum(units for _, _, units in holders), line.qty)
        inventory = div_half_up(share * on_hand, line.qty) if on_hand else 0
        account_at = {location.id: part.accounts[ROLE.INVENTORY]
                      for location, part in zip(ev.scope, line.parts)}
        raised: set[int] = set()
        if inventory:
            parts = allocate(inventory, [units for _, _, units in holders])
            for slot, ((location_id, layer, _), part) in enumerate(zip(holders, parts)):
                if part:
                    em.add_to_layer(op + slot, product, location_id, layer, part, entity,
                                    account_at[location_id])
                    raised.add(location_id)
        for location_id in looked:  # a replay there must re-run this landed cost
            if location_id not in raised:
                em.mark(op_number(line.index, SLOTS_PER_LINE - 1), product, location_id,
                        entity, account_at[location_id])
        em.line(acc[ROLE.COGS], share - inventory, entity, product.id, home, op)


def _cost_update(ev: Event, em: Emitter) -> None:
    """A new standard cost: every location of the entity revalued by
    round((new - old) x qty), Dr inventory / Cr revaluation (or the reverse)."""
    for line in ev.lines:
        for part, location in zip(line.parts, ev.scope):
            unit = UnitCost.from_decimal(line.unit, location.entity.exp)  # type: ignore[arg-type]
            em.standard(op_number(line.index, part.slot), part.product, location.id,
                        location.entity.id, part.accounts[ROLE.INVENTORY],
                        part.accounts[ROLE.REVALUATION], unit)


def _revaluation(ev: Event, em: Emitter) -> None:
    """A write-down: every layer set to round(layer qty x unit_cost), Dr
    revaluation / Cr inventory."""
    entity = ev.entity.id
    loc = ev.location.id  # type: ignore[union-attr]
    for line in ev.lines:
        part = _inventory_part(line)
        unit = UnitCost.from_decimal(line.unit, ev.entity.exp)  # type: ignore[arg-type]
        em.revalue(op_number(line.index, 0), part.product, loc, entity,
                   part.accounts[ROLE.INVENTORY], part.accounts[ROLE.REVALUATION], unit)


HANDLERS: dict[EventKind, Callable[[Event, Emitter], None]] = {
    KIND.RECEIPT: _receipt,
    KIND.OPENING_BALANCE: _opening_balance,
    KIND.VENDOR_BILL: _vendor_bill,
    KIND.PURCHASE_RETURN: _purchase_return,
    KIND.SHIPMENT: _shipment,
    KIND.CUSTOMER_INVOICE: _customer_invoice,
    KIND.SALES_RETURN: _sales_return,
    KIND.TRANSFER: _transfer,
    KIND.ADJUSTMENT: _adjustment,
    KIND.CYCLE_COUNT: _cycle_count,
    KIND.ASSEMBLY: _assembly,
    KIND.DISASSEMBLY: _disassembly,
    KIND.PRODUCTION_ISSUE: _production_issue,
    KIND.PRODUCTION_COST: _production_cost,
    KIND.PRODUCTION_COMPLETE: _production_complete,
    KIND.LANDED_COST: _landed_cost,
    KIND.COST_UPDATE: _cost_update,
    KIND.REVALUATION: _revaluation,
}


def check_documents(ev: Event, ctx: Context) -> None:
    """OVER_RETURN before anything else is touched (it ranks before accounts,
    periods and stock): the documents' open quantities, summed per pool."""
    ref = ev.ref
    if ref is None:
        return
    if ev.kind in (KIND.VENDOR_BILL, KIND.PURCHASE_RETURN):
        totals: dict[int, int] = {}
        for line in ev.lines:
            totals[line.ref_index] = totals.get(line.ref_index, 0) + line.qty  # type: ignore[index]
        for index, qty in totals.items():
            pool = ctx.receipt_pool(ref, index)
            if ev.kind is KIND.VENDOR_BILL:
                pool.check_bill(qty)
            else:
                pool.check_return(qty)
    elif ev.kind in (KIND.CUSTOMER_INVOICE, KIND.SALES_RETURN):
        per_pool: dict[int, int] = {}
        for line in ev.lines:
            shipped, pairs = _shipment_parts(ref, line)
            for part, shipped_part in pairs:
                key = op_number(shipped.index, shipped_part.slot)
                qty = part.qty if (line.qty > 0 or ev.kind is KIND.SALES_RETURN) else -part.qty
                per_pool[key] = per_pool.get(key, 0) + qty
        for op_no, qty in per_pool.items():
            pool = ctx.shipment_pool(ref, op_no)
            if ev.kind is KIND.CUSTOMER_INVOICE:
                pool.check_invoice(qty)
            else:
                pool.check_return(qty)


def evaluate(ev: Event, em: Emitter) -> None:
    """Post `ev` through `em`; on a Rejection the caller rolls the emitter back."""
    handler = HANDLERS.get(ev.kind)
    if handler is None:
        raise Rejection(CODE.INVALID_EVENT, f"event type {ev.kind.value} is not supported")
    handler(ev, em)


def net_lines(lines: list[GLLine]) -> list[GLLine]:
    """One line per (event, producer, date, entity, account, sku, location, op):
    an entry never debits and credits the same account for the same thing."""
    if len(lines) < 2:
        return lines
    totals: dict[tuple, int] = {}
    first: dict[tuple, GLLine] = {}
    for line in lines:
        key = (line.event_id, line.producer_id, line.date, line.entity_id, line.account_id,
               line.sku_id, line.location_id, line.op_no)
        if key in totals:
            totals[key] += line.amount
        else:
            totals[key] = line.amount
            first[key] = line
    if len(totals) == len(lines):
        return lines
    out = []
    for key, amount in totals.items():
        if amount:
            line = first[key]
            out.append(line if line.amount == amount else GLLine(
                line.event_id, line.producer_id, line.date, line.entity_id, line.account_id,
                amount, line.sku_id, line.location_id, line.op_no))
    return out


def check_balanced(lines: list[GLLine]) -> None:
    """Every entry (event, date, entity) balances: checked again before any write."""
    if lines:
        first = lines[0]
        key = (first.event_id, first.producer_id, first.date, first.entity_id)
        if all((line.event_id, line.producer_id, line.date, line.entity_id) == key
               for line in lines):
            total = sum(line.amount for line in lines)
            if total:
                raise InvariantViolation(f"unbalanced entry {key}: off by {total} minor units")
            return
    totals: dict[tuple[int, int, int, int], int] = {}
    for line in lines:
        key = (line.event_id, line.producer_id, line.date, line.entity_id)
        totals[key] = totals.get(key, 0) + line.amount
    for key, total in totals.items():
        if total:
            raise InvariantViolation(f"unbalanced entry {key}: off by {total} minor units")
