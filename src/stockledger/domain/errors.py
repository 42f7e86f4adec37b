"""The SPEC's stable error codes and the two kinds of failure.

``Rejection`` is a value-carrying exception for an event that cannot be posted
(it becomes an exception-queue record with its code); ``InvariantViolation``
means the engine itself is wrong and must never be caught and ignored.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    INVALID_EVENT = "INVALID_EVENT"
    UNKNOWN_LOCATION = "UNKNOWN_LOCATION"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    UNKNOWN_UOM = "UNKNOWN_UOM"
    LOT_REQUIRED = "LOT_REQUIRED"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    OVER_RETURN = "OVER_RETURN"
    UNMAPPED_ACCOUNT = "UNMAPPED_ACCOUNT"
    PERIOD_CLOSED = "PERIOD_CLOSED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    CONFLICT = "CONFLICT"


# SPEC 10: when an event has several problems, the first in this order wins.
PRECEDENCE = (
    ErrorCode.INVALID_EVENT,
    ErrorCode.UNKNOWN_LOCATION,
    ErrorCode.UNKNOWN_SKU,
    ErrorCode.UNKNOWN_UOM,
    ErrorCode.LOT_REQUIRED,
    ErrorCode.UNKNOWN_REFERENCE,
    ErrorCode.ALREADY_REVERSED,
    ErrorCode.OVER_RETURN,
    ErrorCode.UNMAPPED_ACCOUNT,
    ErrorCode.PERIOD_CLOSED,
    ErrorCode.INSUFFICIENT_STOCK,
)
_RANK = {code: rank for rank, code in enumerate(PRECEDENCE)}


class Rejection(Exception):
    """An event that cannot be posted: a SPEC code and a message a user can act on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


def first_rejection(rejections: list[Rejection]) -> Rejection | None:
    """The rejection that SPEC 10's precedence reports first."""
    if not rejections:
        return None
    return min(rejections, key=lambda r: _RANK.get(r.code, len(_RANK)))


class InvariantViolation(RuntimeError):
    """The engine broke one of its own guarantees (an unbalanced entry, a cent lost)."""


class SetupError(Exception):
    """An invalid setup file: every problem, listed at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid setup:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems
