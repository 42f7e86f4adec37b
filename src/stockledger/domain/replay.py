"""Replay: re-run history from a backdated event (or without a reversed one).

Problem: an event dated before later movements of the same SKU and location
changes what those later movements took out of stock, and what they fed
(a transfer's destination, the invoice that moves a shipment's cost from GSNI
to COGS). Peers either skip this (stock and GL drift apart) or repost
everything (hours). Here only what is affected is re-run, with the very same
evaluation code as the first posting, and each difference becomes a ``recost``
entry on the affected event's own accounts, at its own date.

How: a min-heap of event positions ``(date, arrival)``. A SKU/location is
*loaded* when an event being re-run first touches it: its recorded operations
before that point are re-applied to an empty state (fast-forward, no
evaluation), and every event that operated on it later is pushed on the heap.
A document pool (receipt line, shipment part) is rebuilt the same way by
folding the documents before that point. The heap drains in order; every
popped event is evaluated against the positioned states. Events that touch
nothing loaded are never re-run, so the cost is proportional to the affected
history, and an event with nothing after it costs the same as any other.

The comparison with what was posted (and so the recost entries) is made by
``diff_lines`` and ``diff_moves`` against the stored amounts.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Protocol

from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.evaluate import Emitter, GLLine, Move, Op, check_documents, evaluate
from stockledger.domain.events import Event, EventKind, ymd_text
from stockledger.domain.money import UnitCost, format_qty
from stockledger.domain.pools import ReceiptPool, ShipmentPool, WipPool
from stockledger.domain.setup import CogsOn, Method, Product
from stockledger.domain.states import Shortfall, StockState, pack_origin


class OpRecord(NamedTuple):
    """One recorded stock operation with its current (posted + recosted) amounts."""

    event_id: int
    op_no: int
    date: int
    op: int
    qty: int
    value: int
    layer_ref: int | None
    lot: str | None
    account_id: int
    counter_id: int | None
    entity_id: int
    kind: str = ""  # the event's kind
    param_qty: int | None = None  # a count's counted quantity; a unit cost's denominator
    param_value: int | None = None  # a unit cost's numerator (standard, write-down)
    lineage: str | None = None  # a transfer-in's receipt layers, JSON


class FastDelta(NamedTuple):
    """A change found by re-running one recorded operation (the fast lane): the
    recost is `value` on `account_id` (inventory) and its opposite on `counter_id`."""

    event_id: int
    op_no: int
    op: int
    date: int
    sku_id: int
    location_id: int
    entity_id: int
    account_id: int
    counter_id: int | None
    qty: int
    value: int
    layer_ref: int | None
    lot: str | None


class History(Protocol):
    """What a replay reads from the ledger."""

    allow_negative: bool

    def event(self, event_id: int) -> Event: ...

    def prefetch(self, event_ids: list[int]) -> None: ...

    def key_ops(self, sku_id: int, location_id: int) -> list[OpRecord]: ...

    def settling_events(self, sku_id: int, location_id: int) -> set[int]: ...

    def with_documents(self, event_ids: list[int]) -> set[int]: ...

    def documents(self, base_id: int) -> list[Event]: ...

    def op_value(self, event_id: int, op_no: int) -> int: ...

    def order_events(self, order: str) -> list[Event]: ...

    def new_state(self, product: Product, location_id: int) -> StockState: ...


# Kinds re-run straight from their recorded operations: their stock operations
# are the whole of what can change (fixed-value inflows, outflows at cost,
# counts), so no event needs to be re-read and re-resolved.
RECEIPT = EventKind.RECEIPT.value
FAST_KINDS = frozenset({EventKind.RECEIPT.value, EventKind.OPENING_BALANCE.value,
                        EventKind.SHIPMENT.value, EventKind.CYCLE_COUNT.value})


def apply_recorded(state: StockState, rec: OpRecord) -> None:
    """Re-apply a recorded operation (fast-forward). An outflow's recomputed
    cost must equal the recorded one: a mismatch means the ledger is corrupt."""
    origin = pack_origin(rec.event_id, rec.op_no)
    if rec.op == Op.IN or (rec.op == Op.COUNT and rec.qty > 0):
        lineage = tuple(tuple(r) for r in json.loads(rec.lineage)) if rec.lineage else None
        state.add(rec.qty, rec.value, origin, rec.date, rec.lot, lineage)  # type: ignore[arg-type]
    elif rec.op == Op.OUT or (rec.op == Op.COUNT and rec.qty < 0):
        qty = -rec.qty
        prefer = rec.layer_ref if rec.op == Op.OUT else None
        taken_qty, taken_value = state.take(qty, prefer, rec.lot)
        short = qty - taken_qty
        if short:
            state.add_shortfall(Shortfall(rec.event_id, rec.op_no, short, -rec.value - taken_value,
                                          rec.account_id, rec.counter_id, rec.entity_id, rec.lot))
        elif taken_value != -rec.value:
            raise InvariantViolation(
                f"event {rec.event_id} op {rec.op_no}: recorded cost {-rec.value}, "
                f"recomputed {taken_value}")
    elif rec.op == Op.VALUE:
        state.add_value(rec.layer_ref if state.layered else None, rec.value)
    elif rec.op in (Op.STANDARD, Op.REVALUE):
        unit = UnitCost(rec.param_value, rec.param_qty)  # type: ignore[arg-type]
        delta = state.set_standard(unit) if rec.op == Op.STANDARD else state.revalue_to(unit)
        if delta != rec.value:
            raise InvariantViolation(f"event {rec.event_id} op {rec.op_no}: recorded revaluation "
                                     f"{rec.value}, recomputed {delta}")
    if rec.date > state.last_date:
        state.last_date = rec.date


class _PoolOnly(Emitter):
    """Runs a document's handler for its effect on pools only (a fold): stock
    operations do nothing, an outflow reports the cost it took when posted."""

    def out(self, op_no: int, *args: Any, **kwargs: Any) -> int:  # type: ignore[override]
        return self.ctx.recorded_out(self.event_id, op_no)

    def inflow(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def value(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def count(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def line(self, *args: Any, **kwargs: Any) -> None:
        return None

    def receipt_pool(self, receipt: Event, line_index: int) -> ReceiptPool:
        return self.ctx.receipt_pool(receipt, line_index)

    def shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool:
        return self.ctx.shipment_pool(shipment, op_no)

    def wip_pool(self, order: str) -> WipPool:
        return self.ctx.wip_pool(order)

    def stock(self, product: Product, location_id: int) -> StockState:
        raise InvariantViolation("a pool fold touched stock")

    def peek_stock(self, product: Product, location_id: int) -> StockState | None:
        raise InvariantViolation("a pool fold touched stock")


@dataclass
class ReplayResult:
    outcomes: dict[int, tuple[list[Move], list[GLLine]]]  # re-run events (and the new one)
    order: list[int]
    states: dict[tuple[int, int], StockState]
    fast: list[FastDelta]  # changes found by re-running recorded operations


class _Replay:
    """A Context positioned in the past, advancing as the heap drains."""

    def __init__(self, history: History, removed: Event | None) -> None:
        self.history = history
        self.allow_negative = history.allow_negative
        self.removed_id = removed.id if removed is not None else None
        self.position: tuple[int, int] = (0, 0)
        self.states: dict[tuple[int, int], StockState] = {}
        self.products: dict[int, Product] = {}
        self.receipt_pools: dict[tuple[int, int], ReceiptPool] = {}
        self.shipment_pools: dict[tuple[int, int], ShipmentPool] = {}
        self.pool_bases: set[int] = set()
        self.wip_pools: dict[str, WipPool] = {}
        self.heap: list[tuple[int, int]] = []
        self.queued: set[int] = set()
        self.outcomes: dict[int, tuple[list[Move], list[GLLine]]] = {}
        self.order: list[int] = []
        # the fast lane
        self.pending: dict[int, list[tuple[tuple[int, int], OpRecord]]] = {}
        self.kinds: dict[int, str] = {}
        self.settlers: set[int] = set()
        self.has_documents: set[int] = set()
        self.new_values: dict[tuple[int, int], int] = {}
        self.fast: list[FastDelta] = []

    def push(self, date: int, event_id: int) -> None:
        if event_id not in self.queued and event_id != self.removed_id:
            self.queued.add(event_id)
            heapq.heappush(self.heap, (date, event_id))

    # -- Context -----------------------------------------------------------------
    def stock(self, product: Product, location_id: int) -> StockState:
        key = (product.id, location_id)
        state = self.states.get(key)
        if state is None:
            state = self._load_key(product, location_id)
        return state

    def peek_stock(self, product: Product, location_id: int) -> StockState | None:
        return self.stock(product, location_id)

    def _load_key(self, product: Product, location_id: int) -> StockState:
        key = (product.id, location_id)
        state = self.history.new_state(product, location_id)
        self.products[product.id] = product
        slow: list[int] = []
        shipments: list[int] = []
        pending = self.pending
        for rec in self.history.key_ops(product.id, location_id):
            event_id = rec.event_id
            if event_id == self.removed_id:
                continue
            if (rec.date, event_id) < self.position:
                apply_recorded(state, rec)
            elif event_id != self.position[1]:
                if event_id not in self.queued:
                    self.kinds[event_id] = rec.kind
                    if rec.kind in FAST_KINDS:
                        if rec.kind == "shipment":
                            shipments.append(event_id)
                    else:
                        slow.append(event_id)
                    self.push(rec.date, event_id)
                pending.setdefault(event_id, []).append((key, rec))
        self.settlers |= self.history.settling_events(product.id, location_id)
        if shipments:
            self.has_documents |= self.history.with_documents(shipments)
        self.history.prefetch(slow)
        self.states[key] = state
        return state

    def receipt_pool(self, receipt: Event, line_index: int) -> ReceiptPool:
        key = (receipt.id, line_index)
        if key not in self.receipt_pools:
            self._build_pools(receipt)
            if key not in self.receipt_pools:
                line = receipt.lines[line_index]
                self.receipt_pools[key] = _new_receipt_pool(receipt, line_index, line.parts[0].qty,
                                                            line.amount or 0)
        return self.receipt_pools[key]

    def shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool:
        key = (shipment.id, op_no)
        if key not in self.shipment_pools:
            self._build_pools(shipment)
            if key not in self.shipment_pools:
                self.shipment_pools[key] = self._new_shipment_pool(shipment, op_no)
        return self.shipment_pools[key]

    def _new_shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool:
        outcome = self.outcomes.get(shipment.id)
        if outcome is not None:
            value = sum(m.value for m in outcome[0]
                        if m.op_no == op_no and m.event_id == shipment.id)
        elif (shipment.id, op_no) in self.new_values:
            value = self.new_values[(shipment.id, op_no)]
        else:
            value = self.history.op_value(shipment.id, op_no)
        line = shipment.lines[op_no // 64]
        part = line.parts[op_no % 64]
        return ShipmentPool(f"shipment {shipment.ext_id!r} line {line.index + 1} {part.product.sku}",
                            part.qty, -value, part.product.category.cogs_on is CogsOn.INVOICE)

    def wip_pool(self, order: str) -> WipPool:
        """An order's WIP at the current position: its earlier events folded, its
        later ones pushed (they must be re-run with this WIP)."""
        pool = self.wip_pools.get(order)
        if pool is None:
            pool = self.wip_pools[order] = WipPool(order)
            for event in self.history.order_events(order):
                if event.id == self.removed_id or event.id == self.position[1]:
                    continue
                if (event.date, event.id) < self.position:
                    evaluate(event, _PoolOnly(self, event.id, event.date))
                else:
                    self.push(event.date, event.id)
        return pool

    def recorded_out(self, event_id: int, op_no: int) -> int:
        outcome = self.outcomes.get(event_id)
        if outcome is not None:
            return -sum(m.value for m in outcome[0] if m.op_no == op_no and m.event_id == event_id)
        if (event_id, op_no) in self.new_values:
            return -self.new_values[(event_id, op_no)]
        return -self.history.op_value(event_id, op_no)

    def _build_pools(self, base: Event) -> None:
        """Fold the documents of `base` dated before the current position; push the rest."""
        if base.id in self.pool_bases:
            return
        self.pool_bases.add(base.id)
        for doc in self.history.documents(base.id):
            if doc.id == self.removed_id or doc.id == self.position[1]:
                continue
            if (doc.date, doc.id) < self.position:
                evaluate(doc, _PoolOnly(self, doc.id, doc.date))
            else:
                self.push(doc.date, doc.id)

    def rebuild_pools_of(self, base_id: int) -> None:
        """A re-run base (shipment) has a new cost: its pools restart from it."""
        self.pool_bases.discard(base_id)
        for key in [k for k in self.shipment_pools if k[0] == base_id]:
            del self.shipment_pools[key]
        for key in [k for k in self.receipt_pools if k[0] == base_id]:
            del self.receipt_pools[key]
        for doc in self.history.documents(base_id):
            if doc.id != self.removed_id:
                self.push(doc.date, doc.id)

    # -- the fast lane ------------------------------------------------------------
    def can_run_fast(self, event_id: int) -> bool:
        """Re-run from recorded operations unless an inflow would meet (or once
        met) a shortfall: settlements need the whole event; nor a receipt of a
        standard-cost product, which enters at the standard of its date (a
        cost_update inserted or removed before it changes that)."""
        kind = self.kinds.get(event_id)
        if kind not in FAST_KINDS or event_id in self.settlers:
            return False
        for key, rec in self.pending.get(event_id, ()):
            if rec.op != Op.OUT and self.states[key].shortfalls:
                return False
            if kind == RECEIPT and self.products[key[0]].method is Method.STANDARD:
                return False
        return True

    def run_fast(self, event_id: int) -> bool:
        """Re-apply the event's recorded operations on the loaded keys; returns
        whether any value changed."""
        changed = False
        ops = self.pending.pop(event_id, ())
        if len(ops) > 1:
            ops = sorted(ops, key=lambda item: item[1].op_no)
        states, products = self.states, self.products
        for key, rec in ops:
            state = states[key]
            qty, value = _rerun(state, rec, products[key[0]], self.allow_negative)
            if rec.date > state.last_date:
                state.last_date = rec.date
            if rec.op == Op.OUT:
                self.new_values[(event_id, rec.op_no)] = value
            if qty != rec.qty or value != rec.value:
                changed = True
                self.fast.append(FastDelta(event_id, rec.op_no, rec.op, rec.date, key[0], key[1],
                                           rec.entity_id, rec.account_id, rec.counter_id,
                                           qty - rec.qty, value - rec.value, rec.layer_ref,
                                           rec.lot))
        return changed


def _rerun(state: StockState, rec: OpRecord, product: Product, allow_negative: bool
           ) -> tuple[int, int]:
    """One recorded operation re-run on `state`: its new (qty, value)."""
    origin = pack_origin(rec.event_id, rec.op_no)
    if rec.op == Op.IN:
        state.add(rec.qty, rec.value, origin, rec.date, rec.lot)
        return rec.qty, rec.value
    if rec.op == Op.OUT:
        qty = -rec.qty
        taken_qty, value = state.take(qty, rec.layer_ref, rec.lot)
        short = qty - taken_qty
        if short:
            if not (allow_negative and rec.kind in ("shipment", "adjustment")):
                raise Rejection(ErrorCode.INSUFFICIENT_STOCK,
                                f"{product.sku}: {format_qty(taken_qty)} on hand at this date, "
                                f"{format_qty(qty)} needed")
            short_value = state.current_cost().value_of(short)
            state.add_shortfall(Shortfall(rec.event_id, rec.op_no, short, short_value,
                                          rec.account_id, rec.counter_id, rec.entity_id, rec.lot))
            value += short_value
        return -qty, -value
    if rec.op == Op.COUNT:
        counted = rec.param_qty if rec.param_qty is not None else state.book_qty(rec.lot) + rec.qty
        variance = counted - state.book_qty(rec.lot)
        if variance < 0:
            taken_qty, value = state.take(-variance, None, rec.lot)
            return variance, -value
        if variance > 0:
            value = state.current_cost().value_of(variance)
            state.add(variance, value, origin, rec.date, rec.lot)
            return variance, value
        return 0, 0
    raise InvariantViolation(f"operation {rec.op} has no fast re-run")


def _new_receipt_pool(receipt: Event, line_index: int, qty: int, value: int) -> ReceiptPool:
    line = receipt.lines[line_index]
    return ReceiptPool(f"receipt {receipt.ext_id!r} line {line_index + 1} {line.product.sku}",
                       qty, value)


def replay(history: History, *, inserted: Event | None = None,
           removed: Event | None = None, removed_keys: Iterable[tuple[Product, int]] = ()
           ) -> ReplayResult:
    """Re-run what `inserted` (a backdated event) or `removed` (a reversed event)
    affects. Raises the Rejection of any re-run event that can no longer post,
    naming it (the triggering event is then rejected with that code)."""
    run = _Replay(history, removed)
    anchor = inserted if inserted is not None else removed
    if anchor is None:
        raise ValueError("replay needs an inserted or a removed event")
    run.position = (anchor.date, anchor.id)
    if removed is not None:
        for product, location_id in removed_keys:
            run.stock(product, location_id)
        if removed.ref is not None:
            run._build_pools(removed.ref)
        if removed.order is not None:  # its order's later events (a completion) re-run
            run.wip_pool(removed.order)
    if inserted is not None:
        run.push(inserted.date, inserted.id)
        run.queued.discard(inserted.id)
    inserted_id = inserted.id if inserted is not None else None
    heap = run.heap
    while heap:
        date, event_id = heapq.heappop(heap)
        run.position = (date, event_id)
        if event_id != inserted_id and run.can_run_fast(event_id):
            try:
                changed = run.run_fast(event_id)
            except Rejection as rejection:
                raise Rejection(rejection.code, f"{run.kinds[event_id]} of {ymd_text(date)} "
                                f"(event {event_id}) could no longer post: {rejection.message}"
                                ) from None
            if changed and event_id in run.has_documents:
                run.rebuild_pools_of(event_id)
            continue
        run.pending.pop(event_id, None)
        event = inserted if event_id == inserted_id else history.event(event_id)
        emitter = Emitter(run, event_id, date)
        try:
            check_documents(event, run)
            evaluate(event, emitter)
        except Rejection as rejection:
            if event_id == inserted_id:
                raise
            raise Rejection(rejection.code, f"{event.kind.value} {event.ext_id!r} of "
                            f"{ymd_text(event.date)} could no longer post: {rejection.message}"
                            ) from None
        run.outcomes[event_id] = (emitter.moves, emitter.lines)
        run.order.append(event_id)
        if event.kind is EventKind.SHIPMENT and event_id != inserted_id:
            run.rebuild_pools_of(event_id)
    return ReplayResult(run.outcomes, run.order, run.states, run.fast)


# ---------------------------------------------------------------------------
# Differences against what was posted.
# ---------------------------------------------------------------------------

LineKey = tuple[int, int, int, int, int, Any, Any, Any]  # event, producer, date, entity, account, sku, loc, op


def line_key(line: GLLine) -> LineKey:
    return (line.event_id, line.producer_id, line.date, line.entity_id, line.account_id,
            line.sku_id, line.location_id, line.op_no)


def diff_lines(old: dict[LineKey, int], new: Iterable[GLLine]) -> dict[LineKey, int]:
    """New minus old amounts per line key; zero differences dropped."""
    delta = {key: -amount for key, amount in old.items() if amount}
    for line in new:
        key = line_key(line)
        delta[key] = delta.get(key, 0) + line.amount
    return {key: amount for key, amount in delta.items() if amount}


# event, op, producer, date, sku, location, layer: an operation may act on another
# location or layer when re-run (a landed cost's share follows the goods)
MoveKey = tuple[int, int, int, int, int, int, int | None]


def diff_moves(old: dict[MoveKey, tuple[int, int, Any]], new: Iterable[Move]
               ) -> list[tuple[MoveKey, int, int, Any]]:
    """(key, qty delta, value delta, template) for every changed movement; the
    template is the new Move, or the stored row's fields when it disappeared."""
    acc: dict[MoveKey, list[Any]] = {}
    for key, (qty, value, template) in old.items():
        acc[key] = [-qty, -value, template]
    for move in new:
        key = (move.event_id, move.op_no, move.producer_id, move.date, move.sku_id,
               move.location_id, move.layer_ref)
        slot = acc.setdefault(key, [0, 0, move])
        slot[0] += move.qty
        slot[1] += move.value
        slot[2] = move
    return [(key, q, v, t) for key, (q, v, t) in acc.items() if q or v]


def closed_dates(lines: Iterable[tuple[int, int]], closed: dict[int, int]) -> list[tuple[int, int]]:
    """(entity, date) pairs that fall in a closed period."""
    return sorted({(entity, date) for entity, date in lines
                   if entity in closed and date <= closed[entity]})


def period_rejection(hits: list[tuple[int, int]], entity_codes: dict[int, str],
                     closed: dict[int, int], what: str) -> Rejection:
    entity, date = hits[0]
    return Rejection(ErrorCode.PERIOD_CLOSED,
                     f"{what} dated {ymd_text(date)} in {entity_codes.get(entity, entity)}, "
                     f"closed through {ymd_text(closed[entity])}")
