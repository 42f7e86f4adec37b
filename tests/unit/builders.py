"""Builders for the pure-core unit tests: quantities and amounts as text, states as layers.

    q("2.5") -> 2_500_000 micro-units      m("30.00") -> 3000 cents
    stock(FIFO, ("10", "5.00"), ("10", "6.00"))  -> a state holding 10 @ 5.00 then 10 @ 6.00
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stockledger.domain.money import (
    amount_minor,
    format_money,
    format_qty,
    parse_money,
    qty_to_micro,
)
from stockledger.domain.setup import Method, Setup, build_setup
from stockledger.domain.states import StockState, pack_origin

FIFO, LIFO, AVERAGE, STANDARD, SPECIFIC = (Method.FIFO, Method.LIFO, Method.AVERAGE,
                                           Method.STANDARD, Method.SPECIFIC)
DAY0 = 20260100


def q(text: str) -> int:
    """A quantity as text -> micro-units."""
    return qty_to_micro(Decimal(text))


def m(text: str) -> int:
    """An amount as text -> cents."""
    return parse_money(text)


def origin(n: int) -> int:
    """The origin of the n-th inflow built by ``stock`` (event n, op 0)."""
    return pack_origin(n, 0)


def stock(method: Method, *layers: tuple[str, ...], standard: Any = None) -> StockState:
    """A state after the given inflows, in order: (qty, unit cost[, lot]).

    The n-th inflow (1-based) is event n, dated 2026-01-0n."""
    state = StockState(method, standard)
    for n, spec in enumerate(layers, 1):
        qty, unit = spec[0], spec[1]
        lot = spec[2] if len(spec) > 2 else None
        state.add(q(qty), amount_minor(Decimal(qty), Decimal(unit), 2), origin(n), DAY0 + n, lot)
    return state


def left(state: StockState) -> list[tuple[str, str]]:
    """What is on hand, layer by layer (or the pool), as (qty, value) text."""
    if state.layered:
        return [(format_qty(layer[2]), format_money(layer[3])) for layer in state.layers]
    return [(format_qty(state.qty), format_money(state.value))] if state.qty else []


def taken(result: tuple[int, int]) -> tuple[str, str]:
    """(qty taken, value taken) as text."""
    return format_qty(result[0]), format_money(result[1])


def setup_from(doc: dict[str, Any], version: int = 1) -> Setup:
    """A Setup built straight from a (valid) document, with made-up ids."""
    def numbered(codes: list[str]) -> dict[str, int]:
        return {code: n for n, code in enumerate(codes, 1)}

    ids = {
        "entities": numbered([e["code"] for e in doc["entities"]]),
        "accounts": numbered([a["code"] for a in doc.get("accounts", [])]),
        "skus": numbered([p["sku"] for p in doc.get("products", [])]),
        "locations": numbered([loc["code"] for loc in doc.get("locations", [])]),
    }
    return build_setup(doc, version, ids)


# ---------------------------------------------------------------------------
# Workspace-level helpers: events as JSON lines, results by id, reports as dicts.
# ---------------------------------------------------------------------------

def event(id: str, type: str, date: str | None = "2026-01-02", **fields: Any) -> str:
    """One event as a JSON line; `from_` is written as "from"."""
    import json

    doc: dict[str, Any] = {"id": id, "type": type}
    if date is not None:
        doc["date"] = date
    for key, value in fields.items():
        doc["from" if key == "from_" else key] = value
    return json.dumps(doc)


def post(ws: Any, *lines: str, **options: Any) -> Any:
    """Post JSON lines through the service; the summary keeps per-event results."""
    from stockledger.service.ingest import parse_lines, post_events

    return post_events(ws, parse_lines(list(lines)), keep_results=True, **options)


def outcome(summary: Any) -> dict[str, str]:
    """id -> "posted" | "duplicate" | the exception code (the last result per id)."""
    return {r.ext_id: (r.code if r.status == "exception" else r.status) for r in summary.results}


def balances(ws: Any, as_of: int | None = None) -> dict[str, str]:
    """Trial balance as account -> balance, zero balances left out."""
    from stockledger.service.reports import trial_balance

    return {a["code"]: a["balance"] for a in trial_balance(ws, as_of)["accounts"]
            if a["balance"] != "0.00"}


def queue(ws: Any) -> dict[str, str]:
    """The exception queue as id -> code."""
    from stockledger.service.reports import exceptions_list

    return {e["id"]: e["code"] for e in exceptions_list(ws)}
