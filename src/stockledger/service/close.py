"""Month-end close reports (read side): open GRNI and GSNI items, cycle-count
accuracy, valuation review, the stock ledger of a SKU, inventory aging, the
balance sheet and the income statement.

Problem: closing a month means proving that every control account holds
exactly what the documents behind it say, and explaining every large move.
Each report here is therefore derived from the ledger's own records (journal
lines, movements and the events they belong to), summed in integer minor units
by the database where the volume is, and ends with the check an accountant
makes: the open items against the GL balance, the layers against the
valuation, assets against liabilities and equity.

Every function takes a ``Workspace`` and returns plain data (money formatted
with the currency's decimals, quantities as plain decimal strings); the CLI
only renders it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import Connection, case, func, literal_column, select, tuple_

from stockledger import limits
from stockledger.adapters.db import schema as s
from stockledger.adapters.db import store
from stockledger.domain.errors import InvariantViolation
from stockledger.domain.evaluate import Op
from stockledger.domain.events import Event, EventKind, from_ymd, ymd, ymd_text
from stockledger.domain.money import allocate, div_half_up, format_money, format_qty
from stockledger.domain.replay import OpRecord, apply_recorded
from stockledger.domain.setup import Entity, Role, Setup
from stockledger.domain.states import StockState, unpack_origin
from stockledger.service.ingest import StoredEvents
from stockledger.service.reports import (
    _as_of_text,
    _entity,
    _exp,
    _where,
    parse_period,
    role_accounts,
)
from stockledger.service.workspace import UserError, Workspace

DOCUMENT_BUCKETS = (("0-30", 30), ("31-60", 60), ("61-90", 90), (">90", None))
STOCK_BUCKETS = (("0-30", 30), ("31-60", 60), ("61-90", 90), ("91-180", 180), (">180", None))
OP_NAMES = {int(Op.IN): "in", int(Op.OUT): "out", int(Op.VALUE): "value", int(Op.COUNT): "count",
            int(Op.STANDARD): "standard", int(Op.REVALUE): "revalue"}


# -- small shared helpers ------------------------------------------------------------------------

def parse_percent(text: str | None, what: str) -> Fraction:
    """A non-negative percentage given as text ("10", "2.5"), exact."""
    if text is None:
        return Fraction(0)
    try:
        value = Decimal(str(text).strip().rstrip("%"))
    except InvalidOperation:
        raise UserError(f"{what} must be a percentage such as 10 or 2.5, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise UserError(f"{what} must be a percentage of 0 or more, got {text!r}")
    return Fraction(value)


def _pct_text(ratio: Fraction | None) -> str | None:
    """A ratio as a percentage with two decimals, rounded half-up ("12.50")."""
    if ratio is None:
        return None
    return format_money(div_half_up(ratio.numerator * 10000, ratio.denominator), 2)


def _percent_text(value: Fraction) -> str:
    """A percentage given by the user, written back plainly ("10", "2.5")."""
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _effective_as_of(conn: Connection, as_of: int | None) -> int | None:
    """The date the report is as of: the one given, else the latest journal date."""
    if as_of is not None:
        return as_of
    return conn.execute(select(func.max(s.journal_lines.c.date_ymd))).scalar()


def _days(as_of: int, date: int) -> int:
    return (from_ymd(as_of) - from_ymd(date)).days


def _bucket(days: int, buckets: Sequence[tuple[str, int | None]]) -> str:
    for name, limit in buckets:
        if limit is None or days <= limit:
            return name
    raise InvariantViolation("the last age bucket must have no limit")


def _unit_cost(value: int, qty: int, exp: int) -> str | None:
    """value / qty per base unit, rounded half-up to the currency's minor unit."""
    if not qty:
        return None
    return format_money(div_half_up(value * 10**6, qty), exp)


def _event_ref(row: Any) -> dict[str, Any]:
    return {"source": row.source, "id": row.ext_id, "type": row.kind,
            "date": ymd_text(row.date_ymd)}


def _location_ids(setup: Setup, entity: Entity | None) -> set[int] | None:
    """The locations of the entity (None: every location)."""
    if entity is None:
        return None
    return {loc.id for loc in setup.locations.values() if loc.entity.id == entity.id}


def _sku_code(setup: Setup, codes: dict[int, str], sku_id: int | None) -> str | None:
    if sku_id is None:
        return None
    try:
        return setup.product_by_id(sku_id).sku
    except KeyError:  # a product removed from the setup since (it had no stock movements)
        return codes.get(sku_id, f"#{sku_id}")


def _category_code(setup: Setup, sku_id: int | None) -> str:
    if sku_id is None:
        return "(none)"
    try:
        return setup.product_by_id(sku_id).category.code
    except KeyError:
        return "(unknown)"


def _unindexed(column: Any) -> Any:
    """`column + 0`: a grouping over every movement then scans the table and
    sorts, instead of walking the (sku, location) index in random table order
    (several times slower on SQLite at millions of rows)."""
    return (column + literal_column("0")).label(column.name)


def _all_sku_codes(conn: Connection) -> dict[int, str]:
    return {r[0]: r[1] for r in conn.execute(select(s.skus.c.id, s.skus.c.code))}


def _resolve(ws: Workspace, conn: Connection, rows: Iterable[Any]) -> dict[int, Event]:
    """Stored events resolved as they were posted (base-UOM quantities, products)."""
    stored = StoredEvents(ws, lambda: conn)
    resolved = stored.resolve_rows(list(rows))
    return {e.id: e for e in resolved if isinstance(e, Event)}


# -- GRNI and GSNI: open items per document ---------------------------------------------------------

DOCUMENT_KINDS = {
    EventKind.RECEIPT: (EventKind.VENDOR_BILL, EventKind.PURCHASE_RETURN),
    EventKind.SHIPMENT: (EventKind.CUSTOMER_INVOICE, EventKind.SALES_RETURN),
}


def _open_balances(conn: Connection, accounts: Sequence[int], base_kind: EventKind,
                   as_of: int | None, entity: Entity | None) -> list[tuple[int, int | None, dict[str, int]]]:
    """The control account's lines summed per (base document, sku), where the sum
    is not zero, with the part of each document kind (debit > 0).

    Every line is attributed to the base document (receipt or shipment) it
    belongs to: the base's own lines; a document's (bill, return, invoice)
    through its `ref`; a reversal's mirror through the event it reverses.
    Lines of anything else (a manual entry, a purchase return without ref)
    stay on their own event. Closed documents sum to zero, so the open ones
    add up to the account's balance."""
    jl, ev = s.journal_lines, s.events
    ref = ev.alias("ref")
    base = base_kind.value
    anchor = case(
        (ev.c.kind == base, ev.c.id),
        (ev.c.kind == EventKind.REVERSAL.value,
         case((ref.c.kind == base, ref.c.id), else_=func.coalesce(ref.c.ref_event_id, ref.c.id))),
        else_=func.coalesce(ev.c.ref_event_id, ev.c.id))
    doc_kind = case((ev.c.kind == EventKind.REVERSAL.value, ref.c.kind), else_=ev.c.kind)
    inner = (select(anchor.label("anchor"), jl.c.sku_id.label("sku_id"),
                    doc_kind.label("doc_kind"), jl.c.amount_minor.label("amount"))
             .select_from(jl.join(ev, ev.c.id == jl.c.event_id)
                          .outerjoin(ref, ref.c.id == ev.c.ref_event_id))
             .where(jl.c.account_id.in_(accounts), *_where(jl, as_of, entity))
             .subquery())
    kinds = (base_kind, *DOCUMENT_KINDS[base_kind])
    total = func.sum(inner.c.amount)
    rows = conn.execute(
        select(inner.c.anchor, inner.c.sku_id, total,
               *(func.sum(case((inner.c.doc_kind == kind.value, inner.c.amount), else_=0))
                 for kind in kinds))
        .group_by(inner.c.anchor, inner.c.sku_id)
        .having(total != 0))
    return [(row[0], row[1], {"total": int(row[2]), **{kind.value: int(amount or 0)
                                                     for kind, amount in zip(kinds, row[3:])}})
            for row in rows]


def _live_documents(conn: Connection, base_ids: Sequence[int], kinds: Iterable[EventKind],
                    as_of: int | None) -> list[Any]:
    """Documents of the bases dated up to as_of and not reversed (a reversal's
    mirror is dated at the original's date, so a reversed document never counts)."""
    names = {kind.value for kind in kinds}
    rows = [r for r in store.documents_of(conn, base_ids)
            if r.kind in names and (as_of is None or r.date_ymd <= as_of)]
    gone = store.reversed_among(conn, [r.id for r in rows])
    return [r for r in rows if r.id not in gone]


def _moved_quantities(conn: Connection, event_ids: Iterable[int], op: Op,
                      locations: dict[int, int] | None = None) -> dict[tuple[int, int], int]:
    """(event, sku) -> base quantity of the events' own stock operations of kind
    `op`; fills `locations` (event -> location) when given."""
    m = s.movements
    out: dict[tuple[int, int], int] = {}
    for part in store.chunks(sorted(set(event_ids))):
        for event_id, sku_id, location_id, qty in conn.execute(
                select(m.c.event_id, m.c.sku_id, func.min(m.c.location_id),
                       func.sum(m.c.qty_micro))
                .where(m.c.producer_event_id.in_(part), m.c.event_id == m.c.producer_event_id,
                       m.c.kind == "post", m.c.op == int(op))
                .group_by(m.c.event_id, m.c.sku_id)):
            out[(event_id, sku_id)] = abs(int(qty))
            if locations is not None:
                locations.setdefault(event_id, location_id)
    return out


def _document_quantities(ws: Workspace, conn: Connection, base_kind: EventKind,
                         bases: Sequence[int], as_of: int | None, locations: dict[int, int]
                         ) -> dict[tuple[int, int], dict[str, int]]:
    """Per (base, sku): the base's quantity, what was returned (both from the
    movements) and what was billed or invoiced, net of credits (from the
    documents, resolved as they were posted); for bills also the billed amount.
    Fills `locations` with each base's location."""
    billing, returning = DOCUMENT_KINDS[base_kind]
    out: dict[tuple[int, int], dict[str, int]] = defaultdict(
        lambda: {"base": 0, "billed": 0, "returned": 0, "billed_value": 0})
    base_op, return_op = (Op.IN, Op.OUT) if base_kind is EventKind.RECEIPT else (Op.OUT, Op.IN)
    for key, qty in _moved_quantities(conn, bases, base_op, locations).items():
        out[key]["base"] += qty
    documents = _live_documents(conn, bases, (billing, returning), as_of)
    returns = {r.id: r.ref_event_id for r in documents if r.kind == returning.value}
    for (event_id, sku_id), qty in _moved_quantities(conn, returns, return_op).items():
        out[(returns[event_id], sku_id)]["returned"] += qty
    bills = _resolve(ws, conn, [r for r in documents if r.kind == billing.value])
    for doc in bills.values():
        if doc.ref is None:
            continue
        for line in doc.lines:
            sign = 1 if line.qty > 0 else -1
            for part in line.parts:
                figures = out[(doc.ref.id, part.product.id)]
                figures["billed"] += sign * part.qty
            if base_kind is EventKind.RECEIPT:
                out[(doc.ref.id, line.parts[0].product.id)]["billed_value"] += \
                    sign * abs(line.amount or 0)
    return out


def _open_items(ws: Workspace, as_of: int | None, entity_code: str | None, *,
                role: Role, base_kind: EventKind, credit_side: bool) -> dict[str, Any]:
    ws.require()
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        accounts = sorted(role_accounts(setup, role))
        as_of_text = _as_of_text(conn, as_of)
        day = _effective_as_of(conn, as_of)
        balances = _open_balances(conn, accounts, base_kind, as_of, entity) if accounts else []
        anchors = store.events_by_ids(conn, {anchor for anchor, _, _ in balances})
        bases = sorted({anchor for anchor, _, _ in balances
                        if anchors[anchor].kind == base_kind.value})
        locations: dict[int, int] = {}
        quantities = _document_quantities(ws, conn, base_kind, bases, as_of, locations)
        codes = _all_sku_codes(conn)
    sign = -1 if credit_side else 1  # the account's natural side counts positive
    items: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    aging = {name: 0 for name, _ in DOCUMENT_BUCKETS}
    subledger = gl = 0
    for anchor_id, sku_id, amounts in balances:
        anchor = anchors[anchor_id]
        amount = sign * amounts["total"]
        gl += amount
        sku = _sku_code(setup, codes, sku_id)
        if anchor.kind != base_kind.value:
            unmatched.append({"event": _event_ref(anchor), "sku": sku,
                              "amount": format_money(amount, exp)})
            continue
        subledger += amount
        days = _days(day, anchor.date_ymd) if day is not None else 0
        bucket = _bucket(days, DOCUMENT_BUCKETS)
        aging[bucket] += amount
        location = locations.get(anchor_id)
        row: dict[str, Any] = {
            base_kind.value: _event_ref(anchor), "sku": sku,
            "location": setup.location_by_id(location).code if location is not None else None,
        }
        row.update(_item_figures(base_kind, quantities.get((anchor_id, sku_id), {}),
                                 {kind: sign * value for kind, value in amounts.items()}, exp))
        row.update({"open": format_money(amount, exp), "days": days, "bucket": bucket})
        items.append(row)
    items.sort(key=lambda r: (r[base_kind.value]["date"], r[base_kind.value]["source"],
                              r[base_kind.value]["id"], r["sku"] or ""))
    unmatched.sort(key=lambda r: (r["event"]["date"], r["event"]["source"], r["event"]["id"]))
    return {
        "as_of": as_of_text, "entity": entity.code if entity else None,
        "accounts": sorted(setup.account_by_id(a).code for a in accounts),
        "items": items, "unmatched": unmatched,
        "aging": {name: format_money(value, exp) for name, value in aging.items()},
        "subledger": format_money(subledger, exp), "gl": format_money(gl, exp),
        "difference": format_money(subledger - gl, exp),
        "status": "balanced" if subledger == gl else "differences",
    }


def _item_status(open_qty: int, documented: int, done: str) -> str:
    """Why an item is open; `done` is what the document does ("billed", "invoiced")."""
    if open_qty > 0:
        return f"partly {done}" if documented else f"not {done}"
    if open_qty < 0:
        return f"{done} more than kept"
    return "amount difference"


def _item_figures(base_kind: EventKind, qty: dict[str, int], values: dict[str, int],
                  exp: int) -> dict[str, Any]:
    based, billed, returned = qty.get("base", 0), qty.get("billed", 0), qty.get("returned", 0)
    open_qty = based - returned - billed
    if base_kind is EventKind.RECEIPT:
        status = _item_status(open_qty, billed, "billed")
        return {
            "qty_received": format_qty(based), "qty_returned": format_qty(returned),
            "qty_billed": format_qty(billed), "qty_open": format_qty(open_qty),
            "value_received": format_money(values.get("receipt", 0), exp),
            "value_billed": format_money(qty.get("billed_value", 0), exp),
            "grni_cleared_by_bills": format_money(-values.get("vendor_bill", 0), exp),
            "grni_cleared_by_returns": format_money(-values.get("purchase_return", 0), exp),
            "status": status,
        }
    status = _item_status(open_qty, billed, "invoiced")
    return {
        "qty_shipped": format_qty(based), "qty_returned": format_qty(returned),
        "qty_invoiced": format_qty(billed), "qty_open": format_qty(open_qty),
        "value_shipped": format_money(values.get("shipment", 0), exp),
        "value_invoiced": format_money(-values.get("customer_invoice", 0), exp),
        "value_returned": format_money(-values.get("sales_return", 0), exp),
        "status": status,
    }


def grni_report(ws: Workspace, as_of: int | None = None,
                entity_code: str | None = None) -> dict[str, Any]:
    """Receipts not (fully) billed, per receipt and SKU, aged by receipt date,
    and their total against the GRNI accounts' balance (credit positive)."""
    return _open_items(ws, as_of, entity_code, role=Role.GRNI, base_kind=EventKind.RECEIPT,
                       credit_side=True)


def gsni_report(ws: Workspace, as_of: int | None = None,
                entity_code: str | None = None) -> dict[str, Any]:
    """Shipments not (fully) invoiced (cogs_on: invoice), per shipment and
    product, aged by shipment date, against the GSNI accounts (debit positive)."""
    return _open_items(ws, as_of, entity_code, role=Role.GSNI, base_kind=EventKind.SHIPMENT,
                       credit_side=False)


# -- cycle counts ----------------------------------------------------------------------------------------

def counts_report(ws: Workspace, period: str | None = None, as_of: int | None = None,
                  entity_code: str | None = None, tolerance: str | None = None) -> dict[str, Any]:
    """Every cycle-count line (book, counted, variance) and the count accuracy:
    the share of counts whose |variance| / book is within the tolerance."""
    first, last = parse_period(period) if period else (None, as_of)
    if as_of is not None and last is not None:
        last = min(last, as_of)
    tol = parse_percent(tolerance, "--tolerance")
    ws.require()
    m, ev = s.movements, s.events
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        clauses = [ev.c.kind == EventKind.CYCLE_COUNT.value, m.c.op == int(Op.COUNT),
                   m.c.kind != "reversal", m.c.event_id.not_in(select(s.reversals.c.event_id))]
        if first is not None:
            clauses.append(ev.c.date_ymd >= first)
        if last is not None:
            clauses.append(ev.c.date_ymd <= last)
        if entity is not None:
            clauses.append(m.c.entity_id == entity.id)
        rows = conn.execute(
            select(m.c.event_id, m.c.op_no, ev.c.source, ev.c.ext_id, ev.c.date_ymd,
                   func.max(m.c.sku_id), func.max(m.c.location_id), func.max(m.c.lot),
                   func.sum(m.c.qty_micro), func.sum(m.c.value_minor),
                   func.max(m.c.param_qty_micro))
            .select_from(m.join(ev, ev.c.id == m.c.event_id))
            .where(*clauses)
            .group_by(m.c.event_id, m.c.op_no, ev.c.source, ev.c.ext_id, ev.c.date_ymd)
            .order_by(ev.c.date_ymd, m.c.event_id, m.c.op_no)).all()
        codes = _all_sku_codes(conn)
    counts = []
    groups: dict[str, dict[str, dict[str, int]]] = {"location": {}, "month": {}}
    total = {"counts": 0, "accurate": 0, "variance_value": 0}
    for event_id, op_no, source, ext_id, date, sku_id, location_id, lot, variance, value, \
            counted in rows:
        variance, value = int(variance or 0), int(value or 0)
        counted = int(counted or 0)
        book = counted - variance
        accurate = (variance == 0 if book == 0
                    else Fraction(abs(variance) * 100, abs(book)) <= tol)
        location = setup.location_by_id(location_id).code
        counts.append({
            "event": {"source": source, "id": ext_id}, "date": ymd_text(date),
            "sku": _sku_code(setup, codes, sku_id), "location": location, "lot": lot,
            "book_qty": format_qty(book), "counted_qty": format_qty(counted),
            "variance_qty": format_qty(variance), "variance_value": format_money(value, exp),
            "variance_pct": _pct_text(Fraction(variance, abs(book))) if book else None,
            "accurate": accurate,
        })
        for group, key in (("location", location), ("month", ymd_text(date)[:7])):
            figures = groups[group].setdefault(key, {"counts": 0, "accurate": 0,
                                                     "variance_value": 0})
            for target in (figures,) + ((total,) if group == "location" else ()):
                target["counts"] += 1
                target["accurate"] += accurate
                target["variance_value"] += value

    def summary(figures: dict[str, int]) -> dict[str, Any]:
        return {"counts": figures["counts"], "accurate": figures["accurate"],
                "accuracy_pct": _pct_text(Fraction(figures["accurate"], figures["counts"]))
                if figures["counts"] else None,
                "variance_value": format_money(figures["variance_value"], exp)}

    return {
        "period": {"from": ymd_text(first) if first else None,
                   "to": ymd_text(last) if last else None},
        "entity": entity.code if entity else None, "tolerance_pct": _percent_text(tol),
        "counts": counts,
        "by_location": [{"location": key, **summary(f)}
                        for key, f in sorted(groups["location"].items())],
        "by_month": [{"month": key, **summary(f)} for key, f in sorted(groups["month"].items())],
        "total": summary(total),
    }


# -- movements with their events and journal entries ------------------------------------------------------

def _movement_query(clauses: list[Any]) -> Any:
    m, ev = s.movements, s.events
    return (select(m.c.id, m.c.event_id, m.c.op_no, m.c.producer_event_id, m.c.kind, m.c.op,
                   m.c.date_ymd, m.c.sku_id, m.c.location_id, m.c.entity_id, m.c.qty_micro,
                   m.c.value_minor, ev.c.source, ev.c.ext_id, ev.c.kind.label("event_kind"))
            .select_from(m.join(ev, ev.c.id == m.c.event_id))
            .where(*clauses)
            .order_by(m.c.date_ymd, m.c.producer_event_id, m.c.id))


def _entries_of(conn: Connection, moves: Sequence[Any]) -> dict[int, tuple[int, int]]:
    """Movement id -> (journal entry id, cause event id) of the entry that
    carries its GL lines. An entry is (event, kind, date, entity, producer): a
    posting's movements all belong to its one entry; where recosts repeat that
    key, the n-th movement of an operation gets the n-th entry. Movements with
    no GL effect (a transfer between locations on one account, a zero recost)
    get none."""
    je = s.journal_entries
    candidates: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for part in store.chunks(sorted({mv.event_id for mv in moves})):
        for row in conn.execute(select(je.c.id, je.c.event_id, je.c.kind, je.c.date_ymd,
                                       je.c.entity_id, je.c.producer_event_id,
                                       je.c.cause_event_id)
                                .where(je.c.event_id.in_(part)).order_by(je.c.id)):
            key = (row.event_id, row.kind, row.date_ymd, row.entity_id, row.producer_event_id)
            candidates[key].append((row.id, row.cause_event_id))
    out: dict[int, tuple[int, int]] = {}
    seen: dict[tuple, int] = defaultdict(int)
    for mv in sorted(moves, key=lambda mv: mv.id):
        key = (mv.event_id, mv.kind, mv.date_ymd, mv.entity_id, mv.producer_event_id)
        found = candidates.get(key)
        if not found or (mv.kind != "post" and not mv.value_minor):
            continue
        n = seen[key + (mv.op_no,)]
        seen[key + (mv.op_no,)] = n + 1
        out[mv.id] = found[min(n, len(found) - 1)]
    return out


def _movement_item(mv: Any, entry: tuple[int, int] | None, causes: dict[int, Any],
                   setup: Setup, exp: int) -> dict[str, Any]:
    item = {
        "date": ymd_text(mv.date_ymd),
        "event": {"source": mv.source, "id": mv.ext_id, "type": mv.event_kind},
        "kind": mv.kind, "op": OP_NAMES.get(mv.op, str(mv.op)),
        "location": setup.location_by_id(mv.location_id).code,
        "qty": format_qty(int(mv.qty_micro)), "value": format_money(int(mv.value_minor), exp),
        "entry": entry[0] if entry else None,
    }
    if mv.kind != "post" and entry is not None:
        cause = causes.get(entry[1])
        if cause is not None:
            item["caused_by"] = {"source": cause.source, "id": cause.ext_id, "type": cause.kind}
    return item


# -- stock ledger ----------------------------------------------------------------------------------------

def stock_ledger(ws: Workspace, sku: str, location: str | None = None, as_of: int | None = None,
                 entity_code: str | None = None) -> dict[str, Any]:
    """Every movement of a SKU (at a location, or all of the entity's) in date
    order, with the running quantity, value and unit cost, each linked to its
    event and journal entry."""
    ws.require()
    m = s.movements
    with ws.read() as conn:
        setup = ws.setup(conn)
        product = setup.product(sku)
        if product is None:
            raise UserError(f"unknown SKU {sku!r} (not a SKU, an alias or a normalized form of one)")
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        clauses = [m.c.sku_id == product.id]
        if location is not None:
            loc = setup.locations.get(location)
            if loc is None:
                raise UserError(f"unknown location {location!r}")
            if entity is not None and loc.entity.id != entity.id:
                raise UserError(f"location {location} belongs to {loc.entity.code}, "
                                f"not {entity.code}")
            clauses.append(m.c.location_id == loc.id)
        elif entity is not None:
            clauses.append(m.c.location_id.in_(sorted(_location_ids(setup, entity) or ())))
        if as_of is not None:
            clauses.append(m.c.date_ymd <= as_of)
        moves = conn.execute(_movement_query(clauses)).all()
        entries = _entries_of(conn, moves)
        causes = store.events_by_ids(conn, {e[1] for e in entries.values()})
        as_of_text = _as_of_text(conn, as_of)
    qty = value = 0
    out = []
    for mv in moves:
        qty += int(mv.qty_micro)
        value += int(mv.value_minor)
        item = _movement_item(mv, entries.get(mv.id), causes, setup, exp)
        item.update({"running_qty": format_qty(qty), "running_value": format_money(value, exp),
                     "unit_cost": _unit_cost(value, qty, exp)})
        out.append(item)
    return {"as_of": as_of_text, "entity": entity.code if entity else None, "sku": product.sku,
            "location": location, "movements": out, "qty": format_qty(qty),
            "value": format_money(value, exp), "unit_cost": _unit_cost(value, qty, exp)}


# -- valuation review --------------------------------------------------------------------------------------

def valuation_review(ws: Workspace, period: str, threshold: str | None = "10",
                     entity_code: str | None = None) -> dict[str, Any]:
    """SKU/locations whose unit cost or value moved by more than `threshold` %
    between the day before the period and its last day, with the movements
    behind the change."""
    first, last = parse_period(period)
    limit = parse_percent(threshold if threshold is not None else "10", "--threshold")
    opening = ymd(from_ymd(first) - dt.timedelta(days=1))
    ws.require()
    m = s.movements
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        before = m.c.date_ymd <= opening
        sku, location = _unindexed(m.c.sku_id), _unindexed(m.c.location_id)
        rows = conn.execute(
            select(sku, location,
                   func.sum(case((before, m.c.qty_micro), else_=0)),
                   func.sum(case((before, m.c.value_minor), else_=0)),
                   func.sum(m.c.qty_micro), func.sum(m.c.value_minor),
                   func.sum(case((before, 0), else_=1)))
            .where(m.c.date_ymd <= last)
            .group_by(sku, location)).all()
        locations = _location_ids(setup, entity)
        flagged = []
        for sku_id, location_id, q0, v0, q1, v1, moved in rows:
            if locations is not None and location_id not in locations:
                continue
            q0, v0, q1, v1 = int(q0 or 0), int(v0 or 0), int(q1 or 0), int(v1 or 0)
            if not moved:
                continue
            value_change = Fraction(v1 - v0, abs(v0)) if v0 else None
            cost_before = Fraction(v0, q0) if q0 else None
            cost_after = Fraction(v1, q1) if q1 else None
            cost_change = None
            if cost_before and cost_after is not None:
                cost_change = (cost_after - cost_before) / abs(cost_before)
            # a value that starts from nothing, or a unit cost that starts from zero,
            # moved by more than any threshold
            moved_value = (abs(value_change) * 100 > limit if value_change is not None
                           else v1 != v0)
            moved_cost = (abs(cost_change) * 100 > limit if cost_change is not None
                          else cost_before == 0 and bool(cost_after))
            reasons = [name for name, flag in (("value", moved_value), ("unit_cost", moved_cost))
                       if flag]
            if reasons:
                flagged.append((sku_id, location_id, q0, v0, q1, v1, value_change, cost_change,
                                reasons))
        moves: list[Any] = []
        keys = [(f[0], f[1]) for f in flagged]
        for part in store.chunks(keys, limits.SQL_PARAMS_MAX // 2):
            moves.extend(conn.execute(_movement_query([
                tuple_(m.c.sku_id, m.c.location_id).in_(part),
                m.c.date_ymd >= first, m.c.date_ymd <= last])).all())
        entries = _entries_of(conn, moves)
        causes = store.events_by_ids(conn, {e[1] for e in entries.values()})
        codes = _all_sku_codes(conn)
    by_key: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for mv in moves:
        by_key[(mv.sku_id, mv.location_id)].append(
            _movement_item(mv, entries.get(mv.id), causes, setup, exp))
    lines = []
    for sku_id, location_id, q0, v0, q1, v1, value_change, cost_change, reasons in flagged:
        lines.append({
            "sku": _sku_code(setup, codes, sku_id),
            "location": setup.location_by_id(location_id).code,
            "opening": {"qty": format_qty(q0), "value": format_money(v0, exp),
                        "unit_cost": _unit_cost(v0, q0, exp)},
            "closing": {"qty": format_qty(q1), "value": format_money(v1, exp),
                        "unit_cost": _unit_cost(v1, q1, exp)},
            "value_change_pct": _pct_text(value_change),
            "unit_cost_change_pct": _pct_text(cost_change),
            "reasons": reasons,
            "movements": by_key.get((sku_id, location_id), []),
        })
    lines.sort(key=lambda line: (line["sku"], line["location"]))
    return {"period": {"from": ymd_text(first), "to": ymd_text(last)},
            "opening_date": ymd_text(opening), "closing_date": ymd_text(last),
            "entity": entity.code if entity else None, "threshold_pct": _percent_text(limit),
            "lines": lines}


# -- inventory aging -----------------------------------------------------------------------------------------

def _history_records(conn: Connection, keys: Sequence[tuple[int, int]], as_of: int | None,
                     inflows_since: int | None = None) -> dict[tuple[int, int], list[OpRecord]]:
    """The recorded operations of many SKU/locations up to as_of, as a replay
    reads them (store.key_history): own operations with their recosts, reversed
    events and mirrors left out, in (date, arrival) order. With `inflows_since`:
    only the operations that can bring stock in, dated from that day on."""
    m = s.movements
    out: dict[tuple[int, int], list[OpRecord]] = defaultdict(list)
    for part in store.chunks(sorted(keys), limits.SQL_PARAMS_MAX // 2):
        clauses = [tuple_(m.c.sku_id, m.c.location_id).in_(part),
                   m.c.producer_event_id == m.c.event_id, m.c.kind != "reversal",
                   m.c.event_id.not_in(select(s.reversals.c.event_id))]
        if as_of is not None:
            clauses.append(m.c.date_ymd <= as_of)
        if inflows_since is not None:
            clauses += [m.c.op.in_([int(Op.IN), int(Op.COUNT)]), m.c.date_ymd >= inflows_since]
        rows = conn.execute(
            select(m.c.sku_id, m.c.location_id, m.c.event_id, m.c.op_no, m.c.date_ymd,
                   func.min(m.c.op), func.sum(m.c.qty_micro), func.sum(m.c.value_minor),
                   func.max(m.c.layer_ref), func.max(m.c.lot), func.max(m.c.account_id),
                   func.max(m.c.counter_account_id), func.max(m.c.entity_id),
                   func.max(m.c.param_qty_micro), func.max(m.c.param_value_minor),
                   func.max(m.c.lineage))
            .where(*clauses)
            .group_by(m.c.sku_id, m.c.location_id, m.c.event_id, m.c.op_no, m.c.date_ymd)
            .order_by(m.c.sku_id, m.c.location_id, m.c.date_ymd, m.c.event_id, m.c.op_no))
        for r in rows:
            out[(r[0], r[1])].append(OpRecord(
                r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), r[8], r[9], r[10], r[11], r[12],
                "", r[13], r[14], r[15]))
    return out


def _layer_slices(state: StockState, dates: dict[int, int]) -> list[tuple[int, int, int]]:
    """(date received, qty, value) of what a layered state holds. A layer that
    came by transfer is dated by the receipt layers it came from (its lineage),
    split by their quantities."""
    out = []
    for origin, date, qty, value, _lot in state.layers:
        lineage = state.lineage.get(origin)
        if not lineage:
            out.append((date, qty, value))
            continue
        weights = [units for _, units in lineage]
        if sum(weights) <= 0:
            out.append((date, qty, value))
            continue
        for (root, _), part_qty, part_value in zip(lineage, allocate(qty, weights),
                                                   allocate(value, weights)):
            root_date = dates.get(unpack_origin(root)[0], date)
            out.append((min(root_date, date), part_qty, part_value))
    return out


def _pool_slices(qty: int, value: int, inflows: Sequence[OpRecord],
                 older: int) -> list[tuple[int, int, int]]:
    """A pool (average, standard) has no layers: what is on hand is taken to be
    the latest inflows (first in, first out), valued pro rata at the pool's cost.
    Only the inflows of the last bucket's window are read; what they do not
    cover is dated `older` (in the last bucket)."""
    slices: list[tuple[int, int]] = []
    need = qty
    for rec in reversed(inflows):
        if not need:
            break
        if rec.qty <= 0:
            continue
        part = min(need, rec.qty)
        slices.append((rec.date, part))
        need -= part
    if need:
        slices.append((older, need))
    values = allocate(value, [part for _, part in slices])
    return [(date, part, part_value) for (date, part), part_value in zip(slices, values)]


def aging_report(ws: Workspace, as_of: int | None = None,
                 entity_code: str | None = None) -> dict[str, Any]:
    """On-hand stock by the date it was received, in age buckets before as_of."""
    ws.require()
    m, p = s.movements, s.positions
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        day = _effective_as_of(conn, as_of)
        locations = _location_ids(setup, entity)
        as_of_text = _as_of_text(conn, as_of)
        totals: dict[tuple[int, int], tuple[int, int]] = {}
        stale: set[tuple[int, int]] = set()
        if as_of is None:
            rows = conn.execute(select(p.c.sku_id, p.c.location_id, p.c.qty_micro,
                                       p.c.value_minor)).all()
            for sku_id, location_id, qty, value in rows:
                totals[(sku_id, location_id)] = (int(qty), int(value))
        else:
            within = m.c.date_ymd <= as_of
            sku, location = _unindexed(m.c.sku_id), _unindexed(m.c.location_id)
            rows = conn.execute(
                select(sku, location,
                       func.sum(case((within, m.c.qty_micro), else_=0)),
                       func.sum(case((within, m.c.value_minor), else_=0)),
                       func.max(m.c.date_ymd))
                .group_by(sku, location)).all()
            for sku_id, location_id, qty, value, latest in rows:
                totals[(sku_id, location_id)] = (int(qty or 0), int(value or 0))
                if latest > as_of:
                    stale.add((sku_id, location_id))
        keys = [key for key, (qty, value) in totals.items()
                if (qty or value) and (locations is None or key[1] in locations)]
        layered = [key for key in keys if setup.product_by_id(key[0]).method.value
                   in ("fifo", "lifo", "specific")]
        pooled = [key for key in keys if key not in set(layered)]
        states: dict[tuple[int, int], StockState] = {}
        current = [key for key in layered if key not in stale]
        for part in store.chunks(current, limits.SQL_PARAMS_MAX // 2):
            for row in conn.execute(select(p.c.sku_id, p.c.location_id, p.c.state,
                                           p.c.last_date_ymd)
                                    .where(tuple_(p.c.sku_id, p.c.location_id).in_(part))):
                product = setup.product_by_id(row.sku_id)
                states[(row.sku_id, row.location_id)] = StockState.from_data(
                    product.method, None, orjson.loads(row.state), row.last_date_ymd)
        replay = [key for key in layered if key in stale]
        for key, records in _history_records(conn, replay, as_of).items():
            product = setup.product_by_id(key[0])
            location = setup.location_by_id(key[1])
            state = StockState(product.method,
                               setup.standard_unit_cost(product, location.entity.exp))
            for rec in records:
                apply_recorded(state, rec)
            states[key] = state
        window = STOCK_BUCKETS[-2][1] or 0  # older than this: all in the last bucket
        since = ymd(from_ymd(day) - dt.timedelta(days=window)) if day is not None else 0
        older = ymd(from_ymd(since) - dt.timedelta(days=1)) if day is not None else 0
        inflows = _history_records(conn, pooled, as_of, inflows_since=since)
        roots = {unpack_origin(root)[0] for state in states.values()
                 for lineage in state.lineage.values() for root, _ in lineage}
        dates = {row.id: row.date_ymd for row in store.events_by_ids(conn, roots).values()}
        codes = _all_sku_codes(conn)
    lines = []
    bucket_totals = {name: 0 for name, _ in STOCK_BUCKETS}
    total = valuation_total = 0
    for key in sorted(keys, key=lambda k: (_sku_code(setup, codes, k[0]),
                                           setup.location_by_id(k[1]).code)):
        qty, value = totals[key]
        valuation_total += value
        state = states.get(key)
        shortfall_qty = shortfall_value = 0
        if state is not None:
            slices = _layer_slices(state, dates)
            shortfall_qty = state.qty_total - state.qty
            shortfall_value = state.value_total - state.value
        elif qty > 0:
            slices = _pool_slices(qty, value, [r for r in inflows.get(key, ()) if r.qty > 0],
                                  older)
        else:  # a pool owing stock (negative stock allowed): nothing on hand to age
            slices = []
            shortfall_qty, shortfall_value = qty, value
        per_bucket: dict[str, list[int]] = {name: [0, 0] for name, _ in STOCK_BUCKETS}
        for date, part_qty, part_value in slices:
            days = _days(day, date) if day is not None and date else 0
            figures = per_bucket[_bucket(max(days, 0), STOCK_BUCKETS)]
            figures[0] += part_qty
            figures[1] += part_value
        line_total = sum(v for _, v in per_bucket.values()) + shortfall_value
        total += line_total
        for name, (_, v) in per_bucket.items():
            bucket_totals[name] += v
        line = {"sku": _sku_code(setup, codes, key[0]),
                "location": setup.location_by_id(key[1]).code,
                "qty": format_qty(sum(q for q, _ in per_bucket.values()) + shortfall_qty),
                "value": format_money(line_total, exp),
                "buckets": {name: {"qty": format_qty(q), "value": format_money(v, exp)}
                            for name, (q, v) in per_bucket.items()}}
        if shortfall_qty or shortfall_value:
            line["negative_stock"] = {"qty": format_qty(shortfall_qty),
                                      "value": format_money(shortfall_value, exp)}
        lines.append(line)
    shortfalls = total - sum(bucket_totals.values())
    return {"as_of": as_of_text, "entity": entity.code if entity else None,
            "buckets": [name for name, _ in STOCK_BUCKETS], "lines": lines,
            "totals": {name: format_money(v, exp) for name, v in bucket_totals.items()},
            "negative_stock": format_money(shortfalls, exp),
            "total_value": format_money(total, exp),
            "valuation_total": format_money(valuation_total, exp),
            "status": "balanced" if total == valuation_total else "differences"}


# -- balance sheet and income statement ---------------------------------------------------------------------

SIDE = {"asset": 1, "expense": 1, "liability": -1, "equity": -1, "income": -1}


def balance_sheet(ws: Workspace, as_of: int | None = None,
                  entity_code: str | None = None) -> dict[str, Any]:
    """Assets, liabilities and equity at as_of; the year's income and expense
    accounts appear as current-year earnings (calendar year) and earlier years'
    as retained earnings, so the sheet balances."""
    ws.require()
    jl = s.journal_lines
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        day = _effective_as_of(conn, as_of)
        as_of_text = _as_of_text(conn, as_of)
        year_start = (day // 10000) * 10000 + 101 if day else 0
        rows = conn.execute(
            select(jl.c.account_id, func.sum(jl.c.amount_minor),
                   func.sum(case((jl.c.date_ymd < year_start, jl.c.amount_minor), else_=0)))
            .where(*_where(jl, as_of, entity)).group_by(jl.c.account_id)).all()
    sections: dict[str, list[dict[str, Any]]] = {"asset": [], "liability": [], "equity": []}
    totals = {"asset": 0, "liability": 0, "equity": 0}
    retained = current = 0
    for account_id, amount, earlier in rows:
        account = setup.account_by_id(account_id)
        amount, earlier = int(amount or 0), int(earlier or 0)
        if account.type in ("income", "expense"):
            retained -= earlier
            current -= amount - earlier
            continue
        balance = SIDE[account.type] * amount
        if not amount and not balance:
            continue
        sections[account.type].append({"code": account.code, "name": account.name,
                                       "balance": format_money(balance, exp)})
        totals[account.type] += balance
    for section in sections.values():
        section.sort(key=lambda a: a["code"])
    sections["equity"].append({"code": None, "name": "Retained earnings (earlier years)",
                               "balance": format_money(retained, exp)})
    sections["equity"].append({"code": None, "name": "Current-year earnings",
                               "balance": format_money(current, exp)})
    totals["equity"] += retained + current
    other = totals["liability"] + totals["equity"]
    return {"as_of": as_of_text, "entity": entity.code if entity else None,
            "year_start": ymd_text(year_start) if day else None,
            "assets": sections["asset"], "total_assets": format_money(totals["asset"], exp),
            "liabilities": sections["liability"],
            "total_liabilities": format_money(totals["liability"], exp),
            "equity": sections["equity"], "total_equity": format_money(totals["equity"], exp),
            "total_liabilities_and_equity": format_money(other, exp),
            "difference": format_money(totals["asset"] - other, exp),
            "status": "balanced" if totals["asset"] == other else "differences"}


def income_statement(ws: Workspace, period: str | None = None, as_of: int | None = None,
                     entity_code: str | None = None) -> dict[str, Any]:
    """Income and expense over the period (default: the calendar year to
    as_of): revenue, COGS and gross margin, also per category and SKU."""
    ws.require()
    jl = s.journal_lines
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = _entity(setup, entity_code)
        exp = _exp(setup, entity)
        if period:
            first, last = parse_period(period)
        else:
            last = _effective_as_of(conn, as_of)
            if last is None:
                last = ymd(dt.date.today())
            first = (last // 10000) * 10000 + 101
        clauses = [jl.c.date_ymd >= first, jl.c.date_ymd <= last, *_where(jl, None, entity)]
        by_account = conn.execute(select(jl.c.account_id, func.sum(jl.c.amount_minor))
                                  .where(*clauses).group_by(jl.c.account_id)).all()
        revenue_ids = role_accounts(setup, Role.REVENUE)
        cogs_ids = role_accounts(setup, Role.COGS)
        by_sku = conn.execute(
            select(jl.c.account_id, jl.c.sku_id, func.sum(jl.c.amount_minor))
            .where(jl.c.account_id.in_(sorted(revenue_ids | cogs_ids)), *clauses)
            .group_by(jl.c.account_id, jl.c.sku_id)).all()
        codes = _all_sku_codes(conn)
    income, expenses = [], []
    total_income = total_expenses = 0
    for account_id, amount in by_account:
        account = setup.account_by_id(account_id)
        if account.type not in ("income", "expense"):
            continue
        value = SIDE[account.type] * int(amount or 0)
        item = {"code": account.code, "name": account.name, "amount": format_money(value, exp)}
        if account.type == "income":
            income.append(item)
            total_income += value
        else:
            expenses.append(item)
            total_expenses += value
    income.sort(key=lambda a: a["code"])
    expenses.sort(key=lambda a: a["code"])
    per_sku: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for account_id, sku_id, amount in by_sku:
        if account_id in revenue_ids:
            per_sku[sku_id][0] -= int(amount or 0)
        if account_id in cogs_ids:
            per_sku[sku_id][1] += int(amount or 0)
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sku_id, (rev, cogs) in per_sku.items():
        figures = per_category[_category_code(setup, sku_id)]
        figures[0] += rev
        figures[1] += cogs
    revenue = sum(f[0] for f in per_sku.values())
    cogs = sum(f[1] for f in per_sku.values())

    def margin(rev: int, cost: int) -> dict[str, Any]:
        return {"revenue": format_money(rev, exp), "cogs": format_money(cost, exp),
                "gross_margin": format_money(rev - cost, exp),
                "gross_margin_pct": _pct_text(Fraction(rev - cost, rev)) if rev else None}

    skus = [{"sku": _sku_code(setup, codes, sku_id) or "(none)",
             "category": _category_code(setup, sku_id), **margin(rev, cost)}
            for sku_id, (rev, cost) in per_sku.items() if rev or cost]
    skus.sort(key=lambda r: r["sku"])
    return {"period": {"from": ymd_text(first), "to": ymd_text(last)},
            "entity": entity.code if entity else None,
            **margin(revenue, cogs),
            "income": income, "total_income": format_money(total_income, exp),
            "expenses": expenses, "total_expenses": format_money(total_expenses, exp),
            "net_income": format_money(total_income - total_expenses, exp),
            "by_category": [{"category": code, **margin(rev, cost)}
                            for code, (rev, cost) in sorted(per_category.items()) if rev or cost],
            "by_sku": skus}


# -- valuation grouped (report valuation --by) --------------------------------------------------------------

VALUATION_GROUPS = ("sku", "location", "category")


def group_valuation(setup: Setup, data: dict[str, Any], by: str, exp: int) -> dict[str, Any]:
    """The valuation's lines summed per SKU, location or category (quantities
    only per SKU: units of different products do not add up)."""
    if by not in VALUATION_GROUPS:
        raise UserError(f"--by must be one of {', '.join(VALUATION_GROUPS)}, got {by!r}")
    groups: dict[str, list[int]] = {}
    for line in data["lines"]:
        if by == "category":
            product = setup.product(line["sku"])
            key = product.category.code if product is not None else "(unknown)"
        else:
            key = line[by]
        figures = groups.setdefault(key, [0, 0])
        figures[0] += _micro(line["qty"])
        figures[1] += _minor(line["value"], exp)
    lines = []
    for key, (qty, value) in sorted(groups.items()):
        item: dict[str, Any] = {by: key}
        if by == "sku":
            item["qty"] = format_qty(qty)
        item["value"] = format_money(value, exp)
        lines.append(item)
    return {**data, "by": by, "lines": lines}


def _micro(text: str) -> int:
    return int(Decimal(text).scaleb(6))


def _minor(text: str, exp: int) -> int:
    return int(Decimal(text).scaleb(exp))


__all__ = [
    "aging_report",
    "balance_sheet",
    "counts_report",
    "grni_report",
    "group_valuation",
    "gsni_report",
    "income_statement",
    "parse_percent",
    "stock_ledger",
    "valuation_review",
]
