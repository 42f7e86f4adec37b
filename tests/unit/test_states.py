"""Valuation states (SPEC 5): before / apply / expected after, the arithmetic in a comment."""

from __future__ import annotations

import pytest

from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.evaluate import Emitter
from stockledger.domain.money import UnitCost, format_money
from stockledger.domain.setup import Role
from stockledger.domain.states import Shortfall, StockState
from tests.conftest import base_setup
from tests.unit.builders import (
    AVERAGE,
    FIFO,
    LIFO,
    SPECIFIC,
    STANDARD,
    left,
    m,
    origin,
    q,
    setup_from,
    stock,
    taken,
)

# -- FIFO / LIFO ------------------------------------------------------------------------------


def test_fifo_takes_the_oldest_layer_first() -> None:
    # 10 @ 5.00 + 10 @ 6.00, take 15 FIFO -> 50.00 + 5 x 6.00 = 80.00, 5 @ 6.00 = 30.00 left
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"))
    assert taken(state.take(q("15"))) == ("15", "80.00")
    assert left(state) == [("5", "30.00")]
    assert (state.qty, state.value) == (q("5"), m("30.00"))


def test_lifo_takes_the_newest_layer_first() -> None:
    # 10 @ 5.00 + 10 @ 6.00, take 15 LIFO -> 60.00 + 5 x 5.00 = 85.00, 5 @ 5.00 = 25.00 left
    state = stock(LIFO, ("10", "5.00"), ("10", "6.00"))
    assert taken(state.take(q("15"))) == ("15", "85.00")
    assert left(state) == [("5", "25.00")]


def test_fifo_partial_layer_uses_the_take_rule() -> None:
    # one layer 3 @ 3.3333 = 10.00 (3 x 3.3333 = 9.9999 -> 10.00); take 1 -> 10.00 / 3 = 3.33,
    # 2 units for 6.67 left; take 1 -> 6.67 / 2 = 3.335 -> 3.34; the last unit is exactly 3.33
    state = stock(FIFO, ("3", "3.3333"))
    assert left(state) == [("3", "10.00")]
    assert taken(state.take(q("1"))) == ("1", "3.33")
    assert left(state) == [("2", "6.67")]
    assert taken(state.take(q("1"))) == ("1", "3.34")
    assert taken(state.take(q("1"))) == ("1", "3.33")
    assert left(state) == [] and state.value == 0


def test_taking_everything_takes_exactly_the_value() -> None:
    # 10 @ 5.00 + 10 @ 6.00, take 20 -> 110.00 exactly, nothing left
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"))
    assert taken(state.take(q("20"))) == ("20", "110.00")
    assert left(state) == [] and (state.qty, state.value) == (0, 0)


def test_a_take_never_goes_negative_it_reports_what_it_got() -> None:
    # 4 @ 2.50 = 10.00, ask for 6 -> 4 taken for 10.00; the caller deals with the 2 missing
    state = stock(FIFO, ("4", "2.50"))
    assert taken(state.take(q("6"))) == ("4", "10.00")
    assert (state.qty, state.value) == (0, 0)
    assert taken(state.take(q("1"))) == ("0", "0.00")


def test_fractional_quantities() -> None:
    # 2.5 @ 4.00 = 10.00; take 0.75 -> 10.00 x 0.75 / 2.5 = 3.00, 1.75 for 7.00 left
    state = stock(FIFO, ("2.5", "4.00"))
    assert taken(state.take(q("0.75"))) == ("0.75", "3.00")
    assert left(state) == [("1.75", "7.00")]


# -- average ---------------------------------------------------------------------------------------


def test_average_keeps_one_pool() -> None:
    # 10 @ 5.00 + 10 @ 6.00 -> one pool of 20 for 110.00; take 15 -> 110.00 x 15/20 = 82.50,
    # 5 for 27.50 left
    state = stock(AVERAGE, ("10", "5.00"), ("10", "6.00"))
    assert left(state) == [("20", "110.00")]
    assert taken(state.take(q("15"))) == ("15", "82.50")
    assert left(state) == [("5", "27.50")]


def test_average_thirds_add_up_to_the_pool() -> None:
    # pool 3 for 10.00: take 1 -> 3.33 (6.67 left); take 1 -> 6.67/2 = 3.335 -> 3.34; take 1 -> 3.33
    state = stock(AVERAGE, ("1", "3.00"), ("2", "3.50"))
    assert left(state) == [("3", "10.00")]
    assert [taken(state.take(q("1")))[1] for _ in range(3)] == ["3.33", "3.34", "3.33"]
    assert (state.qty, state.value) == (0, 0)


def test_standard_pool_and_current_cost_falls_back_to_standard() -> None:
    # nothing on hand and no inflow yet: the current unit cost is the standard (5.00)
    state = StockState(STANDARD, UnitCost(500, q("1")))
    assert format_money(state.current_cost().value_of(q("3"))) == "15.00"
    state.add(q("4"), m("20.00"), origin(1), 20260101)
    assert taken(state.take(q("1"))) == ("1", "5.00")


# -- specific identification -------------------------------------------------------------------------


def test_specific_takes_only_the_named_lot() -> None:
    # lot A 5 @ 4.00, lot B 5 @ 7.00; take 3 of B -> 21.00; A untouched, 2 of B (14.00) left
    state = stock(SPECIFIC, ("5", "4.00", "A"), ("5", "7.00", "B"))
    assert taken(state.take(q("3"), lot="B")) == ("3", "21.00")
    assert left(state) == [("5", "20.00"), ("2", "14.00")]
    assert state.available("A") == q("5") and state.available("B") == q("2")
    # asking for more of B than there is takes the 2 left (14.00), never lot A
    assert taken(state.take(q("4"), lot="B")) == ("2", "14.00")
    assert left(state) == [("5", "20.00")]
    assert state.available("B") == 0


def test_specific_two_layers_of_one_lot_go_oldest_first() -> None:
    # lot A 2 @ 3.00, lot B 1 @ 9.00, lot A 2 @ 4.00; take 3 of A -> 6.00 + 4.00 = 10.00
    state = stock(SPECIFIC, ("2", "3.00", "A"), ("1", "9.00", "B"), ("2", "4.00", "A"))
    assert taken(state.take(q("3"), lot="A")) == ("3", "10.00")
    assert left(state) == [("1", "9.00"), ("1", "4.00")]


# -- preferring one layer (a purchase return against its receipt) ---------------------------------------


def test_prefer_layer_takes_that_receipt_first_under_fifo() -> None:
    # r1 10 @ 5.00, r2 10 @ 6.00; return 4 of r2 -> 24.00 from r2 (not FIFO's 20.00 from r1)
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"))
    assert taken(state.take(q("4"), prefer=origin(2))) == ("4", "24.00")
    assert left(state) == [("10", "50.00"), ("6", "36.00")]
    assert state.remaining_of(origin(2)) == q("6")


def test_prefer_layer_then_the_method_order_for_the_rest() -> None:
    # r1 10 @ 5.00, r2 10 @ 6.00, r3 10 @ 7.00; take 12 preferring r2 under FIFO ->
    # 10 x 6.00 = 60.00 + 2 of r1 (oldest) = 10.00 -> 70.00; r1 8 @ 40.00 and r3 untouched
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"), ("10", "7.00"))
    assert taken(state.take(q("12"), prefer=origin(2))) == ("12", "70.00")
    assert left(state) == [("8", "40.00"), ("10", "70.00")]
    assert state.remaining_of(origin(2)) == 0


def test_prefer_layer_then_newest_under_lifo() -> None:
    # same layers under LIFO: 10 of r2 = 60.00 + 2 of r3 (newest) = 14.00 -> 74.00
    state = stock(LIFO, ("10", "5.00"), ("10", "6.00"), ("10", "7.00"))
    assert taken(state.take(q("12"), prefer=origin(2))) == ("12", "74.00")
    assert left(state) == [("10", "50.00"), ("8", "56.00")]


def test_a_bill_difference_raises_one_layer() -> None:
    # r1 10 @ 5.00, r2 10 @ 6.00; add 3.00 to r1's layer -> r1 53.00; FIFO take 10 -> 53.00
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"))
    state.add_value(origin(1), m("3.00"))
    assert left(state) == [("10", "53.00"), ("10", "60.00")]
    assert taken(state.take(q("10"))) == ("10", "53.00")
    with pytest.raises(InvariantViolation):
        state.add_value(origin(9), 100)  # no such layer: never silently dropped


# -- current unit cost (SPEC 5) ---------------------------------------------------------------------


def test_current_cost_order_on_hand_then_last_inflow_then_standard_then_zero() -> None:
    # on hand 10 @ 5.00 + 10 @ 6.00 -> 110.00 / 20 = 5.50
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"), standard=UnitCost(400, q("1")))
    assert format_money(state.current_cost().value_of(q("1"))) == "5.50"
    # nothing on hand: the last inflow's unit cost (6.00), not the standard
    state.take(q("20"))
    assert format_money(state.current_cost().value_of(q("1"))) == "6.00"
    # never an inflow: standard; no standard: zero
    assert StockState(FIFO, UnitCost(400, q("1"))).current_cost().value_of(q("2")) == m("8.00")
    assert StockState(FIFO).current_cost().value_of(q("2")) == 0


# -- negative stock: shortfalls and their settlement (SPEC 5, 10) -------------------------------------


def shortfall(qty: str, value: str, event_id: int = 90) -> Shortfall:
    return Shortfall(event_id, 0, q(qty), m(value), account_id=1, counter_id=2, entity_id=1,
                     lot=None)


def test_an_inflow_settles_a_shortfall_at_its_own_unit_cost() -> None:
    # owed 3 valued at 5.00 = 15.00; receipt 10 @ 6.00 = 60.00 settles the 3 at
    # 60.00 x 3/10 = 18.00 -> difference 18.00 - 15.00 = 3.00; 7 for 42.00 become a layer
    state = StockState(FIFO)
    state.add_shortfall(shortfall("3", "15.00"))
    assert (state.qty_total, state.value_total) == (-q("3"), -m("15.00"))
    settlements = state.add(q("10"), m("60.00"), origin(1), 20260105)
    assert [(s.qty, s.assigned, s.actual, s.difference) for s in settlements] == [
        (q("3"), m("15.00"), m("18.00"), m("3.00"))]
    assert left(state) == [("7", "42.00")]
    assert state.shortfalls == []
    state.check()


def test_a_small_inflow_settles_part_of_a_shortfall() -> None:
    # owed 3 for 15.00; receipt 2 @ 6.00 = 12.00 settles 2: assigned 15.00 x 2/3 = 10.00,
    # actual 12.00 -> +2.00; 1 still owed for 5.00, nothing on hand
    state = StockState(FIFO)
    state.add_shortfall(shortfall("3", "15.00"))
    first = state.add(q("2"), m("12.00"), origin(1), 20260105)
    assert [(s.qty, s.assigned, s.actual, s.difference) for s in first] == [
        (q("2"), m("10.00"), m("12.00"), m("2.00"))]
    assert (state.qty, state.qty_total, state.value_total) == (0, -q("1"), -m("5.00"))
    # receipt 4 @ 7.00 = 28.00 settles the last unit at 28.00 / 4 = 7.00 against 5.00 -> +2.00,
    # 3 for 21.00 on hand
    second = state.add(q("4"), m("28.00"), origin(2), 20260106)
    assert [(s.qty, s.assigned, s.actual, s.difference) for s in second] == [
        (q("1"), m("5.00"), m("7.00"), m("2.00"))]
    assert left(state) == [("3", "21.00")] and state.shortfalls == []


def test_shortfalls_are_settled_oldest_first() -> None:
    # owed: first 2 for 10.00 (event 90), then 2 for 12.00 (event 91); receipt 3 @ 4.00 = 12.00:
    # event 90's 2 at 12.00 x 2/3 = 8.00 (-2.00), then 1 of event 91 at the rest 4.00 against
    # 12.00 x 1/2 = 6.00 (-2.00); event 91 still owes 1 for 6.00
    state = StockState(AVERAGE)
    state.add_shortfall(shortfall("2", "10.00", event_id=90))
    state.add_shortfall(shortfall("2", "12.00", event_id=91))
    settled = state.add(q("3"), m("12.00"), origin(1), 20260107)
    assert [(s.shortfall.event_id, s.qty, s.assigned, s.actual) for s in settled] == [
        (90, q("2"), m("10.00"), m("8.00")), (91, q("1"), m("6.00"), m("4.00"))]
    assert [(s.event_id, s.qty, s.value) for s in state.shortfalls] == [(91, q("1"), m("6.00"))]
    assert (state.qty, state.value) == (0, 0)


def test_specific_shortfall_is_settled_only_by_its_lot() -> None:
    # lot A owes 1 for 5.00; an inflow of lot B does not settle it, an inflow of lot A does
    state = StockState(SPECIFIC)
    state.add_shortfall(Shortfall(90, 0, q("1"), m("5.00"), 1, 2, 1, "A"))
    assert state.add(q("2"), m("8.00"), origin(1), 20260105, "B") == []
    assert state.book_qty("A") == -q("1") and state.book_qty("B") == q("2")
    settled = state.add(q("1"), m("6.00"), origin(2), 20260106, "A")
    assert [(s.assigned, s.actual) for s in settled] == [(m("5.00"), m("6.00"))]
    assert left(state) == [("2", "8.00")]


class _Ctx:
    """A Context over in-memory states (no store)."""

    allow_negative = True

    def __init__(self) -> None:
        self.states: dict[tuple[int, int], StockState] = {}

    def stock(self, product, location_id):
        return self.states.setdefault((product.id, location_id), StockState(product.method))


def test_negative_stock_through_the_emitter_shortfall_then_recost() -> None:
    setup = setup_from(base_setup(policies={"negative_stock": "allow"}))
    widget, wh1, acme = setup.products["WIDGET-1"], setup.locations["WH1"], setup.entities["ACME"]
    inv, cogs = setup.account_for(Role.INVENTORY, "ACME").id, setup.account_for(Role.COGS, "ACME").id
    grni = setup.account_for(Role.GRNI, "ACME").id
    ctx = _Ctx()

    def receipt(event_id: int, date: int, qty: str, value: str) -> Emitter:
        em = Emitter(ctx, event_id, date)
        em.inflow(0, widget, wh1.id, q(qty), m(value), acme.id, inv, grni)
        return em

    receipt(1, 20260102, "2", "10.00")       # 2 @ 5.00
    receipt(2, 20260103, "2", "14.00")       # 2 @ 7.00: the last inflow's cost is 7.00
    # ship 6: 10.00 + 14.00 on hand, the 2 short at the last inflow's 7.00 = 14.00 -> 38.00
    ship = Emitter(ctx, 3, 20260110)
    cost = ship.out(0, widget, wh1.id, q("6"), acme.id, inv, cogs, shortfall_ok=True)
    assert format_money(cost) == "38.00"
    assert {(line.account_id, line.amount) for line in ship.lines} == {(inv, -3800), (cogs, 3800)}
    state = ctx.states[(widget.id, wh1.id)]
    assert (state.qty_total, state.value_total) == (-q("2"), -m("14.00"))
    # receipt 5 @ 8.00 = 40.00 settles the 2 at 16.00: +2.00 recost on the shipment (event 3),
    # dated at the receipt (2026-01-15), on the shipment's own accounts; 3 @ 24.00 left
    em = receipt(4, 20260115, "5", "40.00")
    recost = [(ln.event_id, ln.producer_id, ln.date, ln.account_id, ln.amount)
              for ln in em.lines if ln.event_id == 3]
    assert sorted(recost) == sorted([(3, 4, 20260115, inv, -200), (3, 4, 20260115, cogs, 200)])
    assert sum(line.amount for line in em.lines) == 0
    assert left(state) == [("3", "24.00")]
    # purchases 10.00 + 14.00 + 40.00 = 64.00 = cogs 38.00 + 2.00 + on hand 24.00
    assert m("64.00") == m("38.00") + m("2.00") + state.value


def test_without_allow_a_short_outflow_is_insufficient_stock_and_rollback_undoes_it() -> None:
    setup = setup_from(base_setup())
    widget, wh1 = setup.products["WIDGET-1"], setup.locations["WH1"]
    ctx = _Ctx()
    ctx.allow_negative = False
    ctx.states[(widget.id, wh1.id)] = stock(FIFO, ("2", "5.00"))
    em = Emitter(ctx, 3, 20260110)
    # 2 on hand, 3 asked -> INSUFFICIENT_STOCK naming both quantities
    with pytest.raises(Rejection) as info:
        em.out(0, widget, wh1.id, q("3"), 1, 1, 2, shortfall_ok=True)
    assert info.value.code is ErrorCode.INSUFFICIENT_STOCK
    assert "2 on hand" in info.value.message and "3 needed" in info.value.message
    em.rollback()
    assert left(ctx.states[(widget.id, wh1.id)]) == [("2", "10.00")]


# -- snapshots ----------------------------------------------------------------------------------------


def test_snapshot_restore_undoes_takes_adds_and_shortfalls() -> None:
    state = stock(FIFO, ("10", "5.00"), ("10", "6.00"))
    state.add_shortfall(shortfall("1", "5.00"))
    before = (left(state), state.qty, state.value, list(state.shortfalls), state.last_in)
    snap = state.snapshot()
    state.take(q("15"))
    state.add(q("4"), m("40.00"), origin(3), 20260120)
    state.add_value(origin(3), 100)
    assert left(state) != before[0]
    state.restore(snap)
    assert (left(state), state.qty, state.value, list(state.shortfalls), state.last_in) == before
    # the snapshot is a value: restoring twice gives the same state again
    state.take(q("20"))
    state.restore(snap)
    assert left(state) == [("10", "50.00"), ("10", "60.00")]


def test_to_data_and_back() -> None:
    state = stock(FIFO, ("10", "5.00"), ("2.5", "6.00"))
    state.add_shortfall(shortfall("1", "5.00"))
    copy = StockState.from_data(FIFO, None, state.to_data(), 20260102)
    assert left(copy) == left(state)
    assert (copy.qty_total, copy.value_total, copy.last_in) == (
        state.qty_total, state.value_total, state.last_in)
    pool = stock(AVERAGE, ("3", "1.00"))
    assert left(StockState.from_data(AVERAGE, None, pool.to_data(), 0)) == [("3", "3.00")]


def test_check_catches_inconsistent_layers() -> None:
    state = stock(FIFO, ("10", "5.00"))
    state.check()
    state.value += 1
    with pytest.raises(InvariantViolation):
        state.check()
    with pytest.raises(InvariantViolation):
        StockState(FIFO).add(0, 0, origin(1), 20260101)
