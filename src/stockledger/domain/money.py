"""Exact money and quantity arithmetic, rounded in one place.

Problem: an inventory ledger that rounds each journal line independently
creates or loses cents (three shipments of a third each do not add up to the
whole). stockledger never rounds a ratio twice: amounts live as integer minor
units (cents), quantities as integer micro-units of the base UOM, and the only
rounding operation is ``div_half_up`` (ties away from zero, SPEC 5/10).
Taking a part of a pool uses ``take_share`` (all of it takes exactly its
value), splitting an amount uses ``allocate`` (the last share takes the rest),
so the parts always add up to the whole.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Sequence

QTY_EXP = 6
QTY_SCALE = 10**QTY_EXP

# ISO 4217 minor units for the currencies whose exponent is not 2.
_MINOR_EXP = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3,
    "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0,
    "TND": 3, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}


def D(value: object) -> Decimal:
    """A Decimal from a str, int or Decimal (never from a float)."""
    if isinstance(value, float):
        raise TypeError("floats are not accepted for money or quantities")
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def minor_exp(currency: str) -> int:
    """Number of decimals of a currency's minor unit (2 unless ISO says otherwise)."""
    return _MINOR_EXP.get(currency.upper(), 2)


def div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero quantity")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def take_share(value_minor: int, qty_part: int, qty_whole: int) -> int:
    """Value of qty_part units out of a pool of qty_whole units worth value_minor.

    round_half_up(V * q / Q); taking the whole pool takes exactly V.
    """
    if qty_part == qty_whole:
        return value_minor
    if qty_part == 0:
        return 0
    return div_half_up(value_minor * qty_part, qty_whole)


def allocate(amount_minor: int, weights: Sequence[int]) -> list[int]:
    """Split amount over weights share by share (SPEC 5).

    share_i = round_half_up(amount_left * w_i / weights_left); the last share
    takes exactly what is left. Weights must be >= 0 with a positive sum.
    """
    left = amount_minor
    weights_left = sum(weights)
    if weights_left <= 0:
        raise ValueError("allocation weights must have a positive sum")
    shares: list[int] = []
    for weight in weights:
        if weight == weights_left:
            share = left
        else:
            share = div_half_up(left * weight, weights_left) if weight else 0
        shares.append(share)
        left -= share
        weights_left -= weight
    return shares


def round_money(value: Decimal, exp: int) -> int:
    """A decimal amount in currency units -> integer minor units, half-up."""
    return int((value * (10**exp)).to_integral_value(rounding=ROUND_HALF_UP))


def amount_minor(qty: Decimal, unit_price: Decimal, exp: int) -> int:
    """qty x unit price, rounded half-up to the minor unit."""
    return round_money(qty * unit_price, exp)


def qty_to_micro(qty: Decimal) -> int:
    """A base-UOM quantity -> integer micro-units; more than 6 decimals is an error."""
    scaled = qty * QTY_SCALE
    integral = scaled.to_integral_value()
    if scaled != integral:
        raise ValueError(f"quantity {qty} has more than {QTY_EXP} decimal places")
    return int(integral)


def micro_to_qty(qty_micro: int) -> Decimal:
    return Decimal(qty_micro).scaleb(-QTY_EXP)


def format_qty(qty_micro: int) -> str:
    """Plain decimal string without trailing zeros: 5000000 -> "5", 2500000 -> "2.5"."""
    sign = "-" if qty_micro < 0 else ""
    whole, frac = divmod(abs(qty_micro), QTY_SCALE)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def format_money(value_minor: int, exp: int = 2) -> str:
    """Exactly the currency's decimals: 3000 -> "30.00", -5 -> "-0.05"."""
    sign = "-" if value_minor < 0 else ""
    if exp == 0:
        return f"{sign}{abs(value_minor)}"
    whole, frac = divmod(abs(value_minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


def parse_money(text: str, exp: int = 2) -> int:
    """"30.00" -> 3000 (exact; more decimals than the currency has is an error)."""
    value = D(text)
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {text} has more than {exp} decimal places")
    return int(scaled)


def decimal_text(value: Decimal) -> str:
    """Canonical text of a decimal: no exponent, no trailing zeros ("5.00" -> "5")."""
    text = str(value)
    if "E" not in text and "e" not in text:
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text in ("-0", "0", ""):
            return "0"
        if text.startswith("-0") and "." not in text:
            return "0"
        return text
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


class UnitCost:
    """An exact unit cost as a ratio of minor units to micro-units of quantity.

    Values a quantity with the take rule, so q units of a pool at V/Q cost
    exactly what ``take_share`` would give.
    """

    __slots__ = ("value_minor", "qty_micro")

    def __init__(self, value_minor: int, qty_micro: int) -> None:
        self.value_minor = value_minor
        self.qty_micro = qty_micro

    @classmethod
    def from_decimal(cls, unit_price: Decimal, exp: int) -> "UnitCost":
        """A price per base unit (e.g. 5.125 USD/EA) as an exact ratio."""
        scaled = unit_price.scaleb(exp)  # minor units per unit
        sign, digits, exponent = scaled.as_tuple()
        numerator = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        denominator = QTY_SCALE
        if isinstance(exponent, int) and exponent < 0:
            denominator *= 10**-exponent
        elif isinstance(exponent, int) and exponent > 0:
            numerator *= 10**exponent
        return cls(numerator, denominator)

    def value_of(self, qty_micro: int) -> int:
        if self.qty_micro == 0:
            return 0
        return div_half_up(self.value_minor * qty_micro, self.qty_micro)

    def as_tuple(self) -> tuple[int, int]:
        return (self.value_minor, self.qty_micro)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, UnitCost)
            and self.value_minor * other.qty_micro == other.value_minor * self.qty_micro
        )

    def __repr__(self) -> str:
        return f"UnitCost({self.value_minor}/{self.qty_micro})"


ZERO_COST = UnitCost(0, 1)
