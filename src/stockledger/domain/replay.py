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
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.evaluate import Emitter, GLLine, Move, Op, check_documents, evaluate
from stockledger.domain.events import Event, EventKind, ymd_text
from stockledger.domain.pools import ReceiptPool, ShipmentPool
from stockledger.domain.setup import CogsOn, Product
from stockledger.domain.states import Shortfall, StockState, pack_origin


@dataclass(frozen=True, slots=True)
class OpRecord:
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


class History(Protocol):
    """What a replay reads from the ledger."""

    allow_negative: bool

    def event(self, event_id: int) -> Event: ...

    def prefetch(self, event_ids: list[int]) -> None: ...

    def key_ops(self, sku_id: int, location_id: int) -> list[OpRecord]: ...

    def documents(self, base_id: int) -> list[Event]: ...

    def op_value(self, event_id: int, op_no: int) -> int: ...

    def new_state(self, product: Product, location_id: int) -> StockState: ...


def apply_recorded(state: StockState, rec: OpRecord) -> None:
    """Re-apply a recorded operation (fast-forward). An outflow's recomputed
    cost must equal the recorded one: a mismatch means the ledger is corrupt."""
    origin = pack_origin(rec.event_id, rec.op_no)
    if rec.op == Op.IN or (rec.op == Op.COUNT and rec.qty > 0):
        state.add(rec.qty, rec.value, origin, rec.date, rec.lot)
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
    if rec.date > state.last_date:
        state.last_date = rec.date


class _PoolOnly(Emitter):
    """Runs a document's handler for its effect on pools only (a fold)."""

    def out(self, *args: Any, **kwargs: Any) -> int:
        return 0

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


@dataclass
class ReplayResult:
    outcomes: dict[int, tuple[list[Move], list[GLLine]]]  # re-run events (and the new one)
    order: list[int]
    states: dict[tuple[int, int], StockState]


class _Replay:
    """A Context positioned in the past, advancing as the heap drains."""

    def __init__(self, history: History, removed: Event | None) -> None:
        self.history = history
        self.allow_negative = history.allow_negative
        self.removed_id = removed.id if removed is not None else None
        self.position: tuple[int, int] = (0, 0)
        self.states: dict[tuple[int, int], StockState] = {}
        self.receipt_pools: dict[tuple[int, int], ReceiptPool] = {}
        self.shipment_pools: dict[tuple[int, int], ShipmentPool] = {}
        self.pool_bases: set[int] = set()
        self.heap: list[tuple[int, int]] = []
        self.queued: set[int] = set()
        self.outcomes: dict[int, tuple[list[Move], list[GLLine]]] = {}
        self.order: list[int] = []

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

    def _load_key(self, product: Product, location_id: int) -> StockState:
        state = self.history.new_state(product, location_id)
        later: list[int] = []
        for rec in self.history.key_ops(product.id, location_id):
            if rec.event_id == self.removed_id:
                continue
            if (rec.date, rec.event_id) < self.position:
                apply_recorded(state, rec)
            elif rec.event_id != self.position[1]:
                if rec.event_id not in self.queued:
                    later.append(rec.event_id)
                self.push(rec.date, rec.event_id)
        self.history.prefetch(later)
        self.states[(product.id, location_id)] = state
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
        else:
            value = self.history.op_value(shipment.id, op_no)
        line = shipment.lines[op_no // 64]
        part = line.parts[op_no % 64]
        return ShipmentPool(f"shipment {shipment.ext_id!r} line {line.index + 1} {part.product.sku}",
                            part.qty, -value, part.product.category.cogs_on is CogsOn.INVOICE)

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

    def rebuild_pools_of(self, base: Event) -> None:
        """A re-run base (shipment) has a new cost: its pools restart from it."""
        self.pool_bases.discard(base.id)
        for key in [k for k in self.shipment_pools if k[0] == base.id]:
            del self.shipment_pools[key]
        for key in [k for k in self.receipt_pools if k[0] == base.id]:
            del self.receipt_pools[key]
        for doc in self.history.documents(base.id):
            if doc.id != self.removed_id:
                self.push(doc.date, doc.id)


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
    if inserted is not None:
        run.push(inserted.date, inserted.id)
        run.queued.discard(inserted.id)
    while run.heap:
        date, event_id = heapq.heappop(run.heap)
        run.position = (date, event_id)
        event = inserted if inserted is not None and event_id == inserted.id else \
            history.event(event_id)
        emitter = Emitter(run, event_id, date)
        try:
            check_documents(event, run)
            evaluate(event, emitter)
        except Rejection as rejection:
            if inserted is not None and event_id == inserted.id:
                raise
            raise Rejection(rejection.code, f"{event.kind.value} {event.ext_id!r} of "
                            f"{ymd_text(event.date)} could no longer post: {rejection.message}"
                            ) from None
        run.outcomes[event_id] = (emitter.moves, emitter.lines)
        run.order.append(event_id)
        if event.kind is EventKind.SHIPMENT and event_id != getattr(inserted, "id", None):
            run.rebuild_pools_of(event)
    return ReplayResult(run.outcomes, run.order, run.states)


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


MoveKey = tuple[int, int, int, int]  # event, op, producer, date


def diff_moves(old: dict[MoveKey, tuple[int, int, Any]], new: Iterable[Move]
               ) -> list[tuple[MoveKey, int, int, Any]]:
    """(key, qty delta, value delta, template) for every changed movement; the
    template is the new Move, or the stored row's fields when it disappeared."""
    acc: dict[MoveKey, list[Any]] = {}
    for key, (qty, value, template) in old.items():
        acc[key] = [-qty, -value, template]
    for move in new:
        key = (move.event_id, move.op_no, move.producer_id, move.date)
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
