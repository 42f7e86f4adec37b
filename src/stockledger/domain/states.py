"""Valuation state of one SKU at one location: cost layers or a pool, and shortfalls.

Problem: the value leaving inventory must be computed from exactly the units
that are there, in the method's order, with the take rule of SPEC 5, and every
inflow after a shortfall (negative stock under ``allow``) must first settle that
shortfall at its own cost. One class holds both shapes: ``fifo``/``lifo``/
``specific`` keep ordered layers, ``average``/``standard`` keep one pool.

The state is plain in-memory data with no I/O. It is mutable for speed; the
engine snapshots a state before an event touches it and restores it when the
event is rejected, so a rejected event leaves no trace.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from stockledger.domain.errors import InvariantViolation
from stockledger.domain.money import ZERO_COST, UnitCost, allocate, div_half_up, take_share
from stockledger.domain.members import members
from stockledger.domain.setup import Method

METHOD = members(Method)  # see domain.members

# A layer: (origin, date_ymd, qty_micro, value_minor, lot). `origin` packs the
# (event id, op number) of the inflow that created it: see ``pack_origin``.
Layer = tuple[int, int, int, int, "str | None"]

ORIGIN_OP_BITS = 24


def pack_origin(event_id: int, op_no: int) -> int:
    return (event_id << ORIGIN_OP_BITS) | op_no


def unpack_origin(origin: int) -> tuple[int, int]:
    return origin >> ORIGIN_OP_BITS, origin & ((1 << ORIGIN_OP_BITS) - 1)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Units an outflow took beyond what was on hand, valued provisionally."""

    event_id: int
    op_no: int
    qty: int
    value: int
    account_id: int  # the outflow's inventory account
    counter_id: int | None  # the outflow's own counter account (cogs, gsni, adjustment)
    entity_id: int
    lot: str | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Part of a shortfall filled by an inflow: `actual` replaces `assigned`."""

    shortfall: Shortfall
    qty: int
    assigned: int
    actual: int

    @property
    def difference(self) -> int:
        return self.actual - self.assigned


LAYERED = frozenset({METHOD.FIFO, METHOD.LIFO, METHOD.SPECIFIC})


class StockState:
    """Cost layers (or one pool) plus open shortfalls for a SKU at a location."""

    __slots__ = ("method", "layered", "layers", "qty", "value", "shortfalls", "last_in",
                 "standard", "last_date", "lineage")

    def __init__(self, method: Method, standard: UnitCost | None = None) -> None:
        self.method = method
        self.layered = method in LAYERED
        self.layers: deque[Layer] = deque()
        self.qty = 0  # on hand, >= 0
        self.value = 0  # value of what is on hand
        self.shortfalls: list[Shortfall] = []
        self.last_in: tuple[int, int] | None = None  # (value, qty) of the last inflow
        self.standard = standard
        self.last_date = 0  # latest date_ymd of any movement applied
        # layers that came by transfer: origin -> ((receipt layer origin, qty), ...) at arrival
        self.lineage: dict[int, tuple[tuple[int, int], ...]] = {}

    # -- reading -------------------------------------------------------------
    @property
    def qty_total(self) -> int:
        """On hand less shortfalls: negative while stock is owed."""
        return self.qty - sum(s.qty for s in self.shortfalls) if self.shortfalls else self.qty

    @property
    def value_total(self) -> int:
        return self.value - sum(s.value for s in self.shortfalls) if self.shortfalls else self.value

    def available(self, lot: str | None = None) -> int:
        if self.method is METHOD.SPECIFIC:
            return sum(layer[2] for layer in self.layers if layer[4] == lot)
        return self.qty

    def book_qty(self, lot: str | None = None) -> int:
        """Quantity a count compares with (the lot's, for specific identification)."""
        if self.method is METHOD.SPECIFIC:
            owed = sum(s.qty for s in self.shortfalls if s.lot == lot)
            return self.available(lot) - owed
        return self.qty_total

    def current_cost(self) -> UnitCost:
        """On-hand value / qty; else the last inflow's unit cost; else standard; else 0."""
        if self.qty > 0:
            return UnitCost(self.value, self.qty)
        if self.last_in is not None:
            return UnitCost(*self.last_in)
        if self.standard is not None:
            return self.standard
        return ZERO_COST

    def remaining_of(self, origin: int) -> int:
        for layer in self.layers:
            if layer[0] == origin:
                return layer[2]
        return 0

    # -- outflows ------------------------------------------------------------
    def take(self, qty: int, prefer: int | None = None, lot: str | None = None,
             slices: list[tuple[int, int, int]] | None = None) -> tuple[int, int]:
        """Take up to qty units; returns (qty taken, value taken). Never goes negative.
        With `slices`, appends (layer origin, qty taken, layer qty before) per layer."""
        if qty <= 0:
            return 0, 0
        if not self.layered:
            take_qty = min(qty, self.qty)
            value = take_share(self.value, take_qty, self.qty) if take_qty else 0
            self.qty -= take_qty
            self.value -= value
            return take_qty, value
        if prefer is None and self.method is not METHOD.SPECIFIC and slices is None:
            return self._take_from_end(qty, self.method is METHOD.LIFO)
        return self._take_selected(qty, prefer, lot, slices)

    def roots(self, slices: list[tuple[int, int, int]]) -> tuple[tuple[int, int], ...]:
        """The receipt layers (origins) the taken units came from, with their qty:
        a layer that itself came by transfer passes on its own lineage pro rata."""
        out: dict[int, int] = {}
        for origin, taken, _before in slices:
            lineage = self.lineage.get(origin)
            if lineage is None:
                out[origin] = out.get(origin, 0) + taken
                continue
            for (root, _), part in zip(lineage, allocate(taken, [q for _, q in lineage])):
                if part:
                    out[root] = out.get(root, 0) + part
        return tuple(sorted(out.items()))

    def units_from(self, root: int) -> list[tuple[int, int]]:
        """(layer origin, units) of the layers here holding goods of receipt layer `root`."""
        found = []
        for layer in self.layers:
            if layer[0] == root:
                found.append((root, layer[2]))
                continue
            lineage = self.lineage.get(layer[0])
            if lineage:
                arrived = sum(q for _, q in lineage)
                for origin, qty in lineage:
                    if origin == root and arrived:
                        units = div_half_up(layer[2] * qty, arrived)
                        if units:
                            found.append((layer[0], units))
        return found

    def _take_from_end(self, qty: int, newest_first: bool) -> tuple[int, int]:
        layers = self.layers
        need = qty
        taken_value = 0
        index = -1 if newest_first else 0
        while need and layers:
            origin, date, lqty, lvalue, lot = layers[index]
            if lqty <= need:
                if newest_first:
                    layers.pop()
                else:
                    layers.popleft()
                need -= lqty
                taken_value += lvalue
            else:
                part = take_share(lvalue, need, lqty)
                layers[index] = (origin, date, lqty - need, lvalue - part, lot)
                taken_value += part
                need = 0
        taken_qty = qty - need
        self.qty -= taken_qty
        self.value -= taken_value
        return taken_qty, taken_value

    def _take_selected(self, qty: int, prefer: int | None, lot: str | None,
                       slices: list[tuple[int, int, int]] | None = None) -> tuple[int, int]:
        layers = list(self.layers)
        order = list(range(len(layers)))
        if self.method is METHOD.LIFO:
            order.reverse()
        if self.method is METHOD.SPECIFIC:
            order = [i for i in order if layers[i][4] == lot]
        if prefer is not None:
            preferred = [i for i in order if layers[i][0] == prefer]
            order = preferred + [i for i in order if layers[i][0] != prefer]
        need = qty
        taken_value = 0
        for i in order:
            if not need:
                break
            origin, date, lqty, lvalue, llot = layers[i]
            if slices is not None:
                slices.append((origin, min(lqty, need), lqty))
            if lqty <= need:
                layers[i] = (origin, date, 0, 0, llot)
                need -= lqty
                taken_value += lvalue
            else:
                part = take_share(lvalue, need, lqty)
                layers[i] = (origin, date, lqty - need, lvalue - part, llot)
                taken_value += part
                need = 0
        self.layers = deque(layer for layer in layers if layer[2] > 0)
        taken_qty = qty - need
        self.qty -= taken_qty
        self.value -= taken_value
        return taken_qty, taken_value

    def revalue_to(self, unit: UnitCost) -> int:
        """Write every layer (or the pool) down to `unit`; returns the change in value."""
        if self.layered:
            before = self.value
            self.layers = deque((o, d, q, unit.value_of(q), lot) for o, d, q, v, lot in self.layers)
            self.value = sum(layer[3] for layer in self.layers)
            return self.value - before
        new_value = unit.value_of(self.qty)
        delta = new_value - self.value
        self.value = new_value
        return delta

    def set_standard(self, unit: UnitCost) -> int:
        """A new standard cost: the pool is revalued by round((new - old) x qty)."""
        old = self.standard or ZERO_COST
        numerator = unit.value_minor * old.qty_micro - old.value_minor * unit.qty_micro
        delta = div_half_up(numerator * self.qty, unit.qty_micro * old.qty_micro) if self.qty else 0
        self.standard = unit
        self.value += delta
        return delta

    def add_shortfall(self, shortfall: Shortfall) -> None:
        self.shortfalls.append(shortfall)

    # -- inflows -------------------------------------------------------------
    def add(self, qty: int, value: int, origin: int, date: int, lot: str | None = None,
            lineage: tuple[tuple[int, int], ...] | None = None) -> list[Settlement]:
        """An inflow: settles open shortfalls oldest first, the rest becomes a layer."""
        if qty <= 0:
            raise InvariantViolation(f"inflow of non-positive quantity {qty}")
        settlements: list[Settlement] = []
        qty_left, value_left = qty, value
        if self.shortfalls:
            kept: list[Shortfall] = []
            for shortfall in self.shortfalls:
                matches = self.method is not METHOD.SPECIFIC or shortfall.lot == lot
                if not qty_left or not matches:
                    kept.append(shortfall)
                    continue
                part = min(qty_left, shortfall.qty)
                actual = take_share(value_left, part, qty_left)
                assigned = take_share(shortfall.value, part, shortfall.qty)
                settlements.append(Settlement(shortfall, part, assigned, actual))
                qty_left -= part
                value_left -= actual
                if part < shortfall.qty:
                    kept.append(replace(shortfall, qty=shortfall.qty - part,
                                        value=shortfall.value - assigned))
            self.shortfalls = kept
        if qty_left:
            if self.layered:
                self.layers.append((origin, date, qty_left, value_left, lot))
                if lineage:
                    self.lineage[origin] = lineage
            self.qty += qty_left
            self.value += value_left
        elif value_left:
            raise InvariantViolation("settlement left value without quantity")
        self.last_in = (value, qty)
        return settlements

    def add_value(self, origin: int | None, amount: int) -> None:
        """Raise (or lower) the value of one layer, or of the pool."""
        if not amount:
            return
        if self.layered:
            for i, layer in enumerate(self.layers):
                if layer[0] == origin:
                    self.layers[i] = (layer[0], layer[1], layer[2], layer[3] + amount, layer[4])
                    break
            else:
                raise InvariantViolation(f"no layer {origin} to carry {amount}")
        elif self.qty <= 0:
            raise InvariantViolation("value added to an empty pool")
        self.value += amount

    # -- snapshots and persistence ------------------------------------------
    def snapshot(self) -> tuple:
        return (tuple(self.layers), self.qty, self.value, tuple(self.shortfalls), self.last_in,
                self.last_date, self.standard, dict(self.lineage) if self.lineage else None)

    def restore(self, snap: tuple) -> None:
        layers, self.qty, self.value, shortfalls, self.last_in, self.last_date, \
            self.standard, lineage = snap
        self.lineage = lineage or {}
        self.layers = deque(layers)
        self.shortfalls = list(shortfalls)

    def check(self) -> None:
        """Internal consistency: layer sums equal the totals, nothing negative."""
        if self.layered:
            if sum(layer[2] for layer in self.layers) != self.qty or \
                    sum(layer[3] for layer in self.layers) != self.value:
                raise InvariantViolation("layers do not add up to the on-hand totals")
        if self.qty < 0 or any(s.qty <= 0 for s in self.shortfalls):
            raise InvariantViolation("negative on-hand or empty shortfall")

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.layers:
            data["l"] = [list(layer) for layer in self.layers]
        if not self.layered and self.qty:
            data["p"] = [self.qty, self.value]
        if self.shortfalls:
            data["s"] = [[s.event_id, s.op_no, s.qty, s.value, s.account_id, s.counter_id,
                          s.entity_id, s.lot] for s in self.shortfalls]
        if self.last_in is not None:
            data["i"] = list(self.last_in)
        if self.standard is not None:
            data["std"] = [self.standard.value_minor, self.standard.qty_micro]
        if self.lineage:
            live = {layer[0] for layer in self.layers}
            kept = {str(o): [list(r) for r in roots] for o, roots in self.lineage.items()
                    if o in live}
            if kept:
                data["g"] = kept
        return data

    @classmethod
    def from_data(cls, method: Method, standard: UnitCost | None, data: dict[str, Any],
                  last_date: int) -> "StockState":
        state = cls(method, standard)
        for layer in data.get("l", ()):
            state.layers.append(tuple(layer))  # type: ignore[arg-type]
        if state.layered:
            state.qty = sum(layer[2] for layer in state.layers)
            state.value = sum(layer[3] for layer in state.layers)
        elif "p" in data:
            state.qty, state.value = data["p"]
        state.shortfalls = [Shortfall(*s) for s in data.get("s", ())]
        if "i" in data:
            state.last_in = tuple(data["i"])  # type: ignore[assignment]
        if "std" in data:  # a cost_update changed it since the setup
            state.standard = UnitCost(*data["std"])
        for origin, roots in data.get("g", {}).items():
            state.lineage[int(origin)] = tuple(tuple(r) for r in roots)  # type: ignore[misc]
        state.last_date = last_date
        return state
