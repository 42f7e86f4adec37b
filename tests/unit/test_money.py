"""Money and quantity arithmetic (SPEC 5, 10): one rounding rule, parts add up to the whole.

Amounts are integer minor units (cents), quantities integer micro-units.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockledger.domain.money import (
    D,
    UnitCost,
    allocate,
    amount_minor,
    decimal_text,
    div_half_up,
    format_money,
    format_qty,
    micro_to_qty,
    parse_money,
    qty_to_micro,
    round_money,
    take_share,
)

# -- div_half_up: ties away from zero, also for negatives (SPEC 10) -------------------------

@pytest.mark.parametrize(("numerator", "denominator", "expected"), [
    (5, 2, 3),      # 2.5 -> 3
    (-5, 2, -3),    # -2.5 -> -3 (away from zero, not towards +inf)
    (5, -2, -3),    # the sign may sit on the denominator
    (-5, -2, 3),
    (7, 2, 4),      # 3.5 -> 4
    (-7, 2, -4),    # -3.5 -> -4
    (1, 3, 0),      # 0.333 -> 0
    (2, 3, 1),      # 0.667 -> 1
    (-2, 3, -1),    # -0.667 -> -1
    (-1, 3, 0),     # -0.333 -> 0 (never "-0" as a different value)
    (1, 2, 1),      # 0.5 -> 1
    (-1, 2, -1),    # -0.5 -> -1
    (6, 3, 2),      # exact stays exact
    (0, 7, 0),
    (2499, 1000, 2),    # 2.499 -> 2
    (-2501, 1000, -3),  # -2.501 -> -3
])
def test_div_half_up(numerator: int, denominator: int, expected: int) -> None:
    assert div_half_up(numerator, denominator) == expected


def test_div_half_up_by_zero_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        div_half_up(100, 0)


@pytest.mark.parametrize(("value", "exp", "expected"), [
    ("0.125", 2, 13),     # 12.5 cents -> 13
    ("-0.125", 2, -13),   # -12.5 cents -> -13
    ("-0.005", 2, -1),    # -0.5 cent -> -1 cent
    ("0.004", 2, 0),
    ("2.5", 0, 3),        # JPY: 2.5 yen -> 3
    ("1.0005", 3, 1001),  # KWD-style 3 decimals
])
def test_round_money_half_up(value: str, exp: int, expected: int) -> None:
    assert round_money(Decimal(value), exp) == expected


def test_amount_minor_is_qty_times_price_rounded_once() -> None:
    # 3 x 3.335 = 10.005 -> 10.01 (not 3 x round(3.335) = 3 x 3.34 = 10.02)
    assert amount_minor(Decimal(3), Decimal("3.335"), 2) == 1001
    # 12 x 5.00 = 60.00
    assert amount_minor(Decimal(12), Decimal("5.00"), 2) == 6000
    # -2 x 1.005 = -2.01 exactly
    assert amount_minor(Decimal(-2), Decimal("1.005"), 2) == -201


def test_D_refuses_floats_and_garbage() -> None:
    assert D("5.00") == Decimal("5.00")
    assert D(7) == Decimal(7)
    with pytest.raises(TypeError):
        D(0.1)
    with pytest.raises(ValueError):
        D("abc")


# -- take_share: q of Q units worth V (SPEC 5) -------------------------------------------------

@pytest.mark.parametrize(("value", "part", "whole", "expected"), [
    (1000, 3, 3, 1000),   # all of it: exactly V
    (1001, 7, 7, 1001),   # all of it, whatever V / Q is
    (1000, 1, 3, 333),    # 10.00 x 1/3 = 3.333 -> 3.33
    (1000, 2, 3, 667),    # 10.00 x 2/3 = 6.667 -> 6.67
    (1000, 0, 3, 0),      # nothing
    (-1000, 1, 3, -333),  # a negative pool (a shortfall's value)
    (-500, 1, 4, -125),
    (-1, 1, 2, -1),       # -0.005 -> -0.01 (away from zero)
    (1, 1, 2, 1),         # 0.005 -> 0.01
])
def test_take_share(value: int, part: int, whole: int, expected: int) -> None:
    assert take_share(value, part, whole) == expected


def test_take_share_taking_all_takes_exactly_the_value_even_when_the_ratio_rounds() -> None:
    # 3 units for 10.00: V x Q / Q would be exact anyway; 7 units for 0.01:
    # round(0.01 x 7 / 7) = 0.01 -- and with a pool of 3 units for 0.02 taken as 3:
    assert take_share(2, 3, 3) == 2
    assert take_share(10**15 + 1, 10**9, 10**9) == 10**15 + 1


def test_taking_a_pool_piece_by_piece_adds_up_to_the_pool() -> None:
    # 3 units worth 1.00, taken 1 at a time from what is left:
    # 1.00 x 1/3 = 0.333 -> 0.33, left 2 for 0.67; 0.67 x 1/2 = 0.335 -> 0.34, left 1 for 0.33;
    # the last unit takes exactly 0.33.  0.33 + 0.34 + 0.33 = 1.00
    qty, value, taken = 3, 100, []
    for _ in range(3):
        share = take_share(value, 1, qty)
        taken.append(share)
        qty, value = qty - 1, value - share
    assert taken == [33, 34, 33]
    assert sum(taken) == 100 and value == 0


# -- allocate: share by share, the last takes the rest (SPEC 5) -----------------------------------

@pytest.mark.parametrize(("amount", "weights", "expected"), [
    # 1.00 over 1:1:1 -> 0.33, then 0.67 x 1/2 = 0.335 -> 0.34, then the rest 0.33
    (100, [1, 1, 1], [33, 34, 33]),
    # negatives mirror positives (ties away from zero)
    (-100, [1, 1, 1], [-33, -34, -33]),
    # 0.01 over 1:1:1 -> 0.0033 -> 0.00, then 0.01 x 1/2 = 0.005 -> 0.01, then the rest 0.00
    (1, [1, 1, 1], [0, 1, 0]),
    (-1, [1, 1, 1], [0, -1, 0]),
    # 10.00 over 1:2:3 -> 1.667 -> 1.67; 8.33 x 2/5 = 3.332 -> 3.33; rest 5.00
    (1000, [1, 2, 3], [167, 333, 500]),
    # zero weights get nothing; the only positive weight takes everything
    (1000, [0, 5, 0], [0, 1000, 0]),
    (1000, [7], [1000]),
    (0, [1, 2], [0, 0]),
])
def test_allocate(amount: int, weights: list[int], expected: list[int]) -> None:
    shares = allocate(amount, weights)
    assert shares == expected
    assert sum(shares) == amount


def test_allocate_last_share_takes_exactly_the_rest() -> None:
    # 1.00 over seven equal weights: each 1.00 x 1/7 rounds, the last absorbs the rounding
    shares = allocate(100, [1] * 7)
    assert sum(shares[:-1]) + shares[-1] == 100
    running_left = 100
    for share in shares[:-1]:
        running_left -= share
    assert shares[-1] == running_left


def test_allocate_refuses_weights_without_a_positive_sum() -> None:
    with pytest.raises(ValueError):
        allocate(100, [0, 0])
    with pytest.raises(ValueError):
        allocate(100, [])


@given(amount=st.integers(min_value=-10**12, max_value=10**12),
       weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12)
       .filter(lambda ws: sum(ws) > 0))
def test_allocate_parts_add_up_and_never_have_the_wrong_sign(amount: int, weights: list[int]) -> None:
    shares = allocate(amount, weights)
    assert len(shares) == len(weights)
    assert sum(shares) == amount
    for share, weight in zip(shares, weights):
        assert share * amount >= 0, f"share {share} has the wrong sign for amount {amount}"
        if weight == 0:
            assert share == 0, "a zero weight gets nothing"
    # the last positive weight's share is what the others left
    last = max(i for i, w in enumerate(weights) if w)
    assert shares[last] == amount - sum(s for i, s in enumerate(shares) if i != last)


# -- text forms (SPEC 8: money with exactly the currency's decimals, quantities plain) ---------------

@pytest.mark.parametrize(("qty_micro", "expected"), [
    (5_000_000, "5"),
    (2_500_000, "2.5"),
    (1_050_000, "1.05"),
    (100_000_000, "100"),      # integer zeros stay
    (1, "0.000001"),
    (0, "0"),
    (-2_500_000, "-2.5"),
    (-3_000_000, "-3"),
    (123_456_789, "123.456789"),
])
def test_format_qty(qty_micro: int, expected: str) -> None:
    assert format_qty(qty_micro) == expected


@pytest.mark.parametrize(("value_minor", "exp", "expected"), [
    (3000, 2, "30.00"),
    (-5, 2, "-0.05"),
    (0, 2, "0.00"),
    (7, 2, "0.07"),
    (123456, 2, "1234.56"),
    (-100, 2, "-1.00"),
    (1234, 0, "1234"),
    (-1234, 0, "-1234"),
    (1234, 3, "1.234"),
    (5, 3, "0.005"),
])
def test_format_money(value_minor: int, exp: int, expected: str) -> None:
    assert format_money(value_minor, exp) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("5.00", "5"),
    ("5", "5"),
    ("2.50", "2.5"),
    ("100", "100"),
    ("100.0", "100"),
    ("1E+2", "100"),
    ("1.5E+1", "15"),
    ("1E-7", "0.0000001"),
    ("0.000", "0"),
    ("-0", "0"),
    ("-0.0", "0"),
    ("-5.10", "-5.1"),
    ("0.10", "0.1"),
])
def test_decimal_text_is_canonical(text: str, expected: str) -> None:
    assert decimal_text(Decimal(text)) == expected


def test_decimal_text_equal_values_have_equal_text() -> None:
    forms = ["5", "5.0", "5.00", "5.000000", "0.5E+1", "50E-1"]
    assert {decimal_text(Decimal(f)) for f in forms} == {"5"}


def test_qty_to_micro_and_back() -> None:
    assert qty_to_micro(Decimal("2.5")) == 2_500_000
    assert qty_to_micro(Decimal("0.000001")) == 1
    assert qty_to_micro(Decimal(-3)) == -3_000_000
    assert micro_to_qty(2_500_000) == Decimal("2.5")
    with pytest.raises(ValueError):
        qty_to_micro(Decimal("1.0000001"))  # seven decimals


def test_parse_money_is_exact() -> None:
    assert parse_money("30.00") == 3000
    assert parse_money("-0.05") == -5
    assert parse_money("12", 0) == 12
    with pytest.raises(ValueError):
        parse_money("30.001")


# -- UnitCost: a price per base unit valued with the take rule ------------------------------------------

def test_unit_cost_values_quantities_with_the_take_rule() -> None:
    # 5.125 per unit: 2 units = 10.25; 1 unit = 5.125 -> 5.13
    cost = UnitCost.from_decimal(Decimal("5.125"), 2)
    assert cost.value_of(2_000_000) == 1025
    assert cost.value_of(1_000_000) == 513
    # a pool of 3 units worth 10.00: 1 unit = 3.33, 3 units = 10.00 exactly
    pool = UnitCost(1000, 3_000_000)
    assert pool.value_of(1_000_000) == 333
    assert pool.value_of(3_000_000) == 1000
    assert UnitCost(0, 0).value_of(5_000_000) == 0


def test_unit_cost_equality_is_by_ratio() -> None:
    assert UnitCost(500, 1_000_000) == UnitCost(1000, 2_000_000)
    assert UnitCost.from_decimal(Decimal(5), 2) == UnitCost(500, 1_000_000)
    assert UnitCost(500, 1_000_000) != UnitCost(501, 1_000_000)
