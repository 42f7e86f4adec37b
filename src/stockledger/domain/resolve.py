"""Resolution: an event as received -> a resolved ``Event`` (or a ``Rejection``).

Problem: an event can be wrong in several ways at once, and users must always
be told the same, most fundamental problem first (SPEC 10: structure and sign,
location, SKU, UOM, lot, references, accounts). Resolution therefore runs the
checks in exactly that order and stops at the first failure; the account
check is returned separately ("deferred") because OVER_RETURN, which needs the
referenced document's running totals, ranks before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, NamedTuple, Protocol, Sequence

from stockledger import limits
from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.events import (
    KIT_KINDS,
    PRODUCTION_KINDS,
    REF_KINDS,
    REF_REQUIRED,
    SUPPORTED_KINDS,
    UNIT_COST_KINDS,
    Accounts,
    Event,
    EventKind,
    Line,
    Part,
    Reversal,
    ymd_text,
)
from stockledger.domain.members import members
from stockledger.domain.money import QTY_SCALE, amount_minor, qty_to_micro, round_money
from stockledger.domain.setup import CogsOn, Location, Method, Product, ProductKind, Role, Setup


class LineInput(Protocol):
    sku: str | None
    qty: Decimal | None
    uom: str | None
    unit_cost: Decimal | None
    unit_price: Decimal | None
    lot: str | None


class EventInput(Protocol):
    """What the edge hands over: structurally valid, not yet resolved."""

    id: str
    source: str
    type: str
    date_ymd: int | None
    location: str | None
    from_: str | None
    to: str | None
    lines: Sequence[LineInput] | None
    ref: str | None
    ref_source: str | None
    reason: str | None

    def line_inputs(self) -> Sequence[LineInput]: ...


@dataclass(frozen=True, slots=True)
class RefLookup:
    """What the store knows about a referenced event."""

    event: Event | Reversal | None  # None: never posted (or only in the exception queue)
    reversed: bool = False
    live_documents: tuple[str, ...] = ()  # ids of unreversed documents that refer to it


RefFinder = Callable[[str, str], RefLookup]


KIND = members(EventKind)  # see domain.members
# a NamedTuple from a tuple of all its fields, without the keyword-handling __new__
_new = tuple.__new__


def _invalid(message: str) -> Rejection:
    return Rejection(ErrorCode.INVALID_EVENT, message)


_KINDS = {kind.value: kind for kind in EventKind}
QTY_SCALE_DECIMAL = Decimal(QTY_SCALE)

POSITIVE_QTY = {
    EventKind.RECEIPT, EventKind.SHIPMENT, EventKind.TRANSFER, EventKind.PURCHASE_RETURN,
    EventKind.SALES_RETURN, EventKind.ASSEMBLY, EventKind.DISASSEMBLY,
    EventKind.PRODUCTION_ISSUE, EventKind.PRODUCTION_COMPLETE, EventKind.OPENING_BALANCE,
}
NONZERO_QTY = {EventKind.ADJUSTMENT, EventKind.VENDOR_BILL, EventKind.CUSTOMER_INVOICE}
COST_REQUIRED = {EventKind.RECEIPT, EventKind.VENDOR_BILL, EventKind.OPENING_BALANCE}
NEEDS_LOCATION = {
    EventKind.RECEIPT, EventKind.SHIPMENT, EventKind.ADJUSTMENT, EventKind.CYCLE_COUNT,
    EventKind.OPENING_BALANCE, EventKind.ASSEMBLY, EventKind.DISASSEMBLY,
    EventKind.PRODUCTION_ISSUE, EventKind.PRODUCTION_COST, EventKind.PRODUCTION_COMPLETE,
    EventKind.REVALUATION,
}
NO_LINES = {EventKind.PRODUCTION_COST, EventKind.LANDED_COST}


def roles_for(kind: EventKind, product: Product) -> tuple[Role, ...]:
    """Every role an event of `kind` can post to for `product` (SPEC 10)."""
    standard = product.method is Method.STANDARD
    on_invoice = product.category.cogs_on is CogsOn.INVOICE
    if kind is EventKind.RECEIPT:
        return (Role.INVENTORY, Role.GRNI, Role.PPV) if standard else (Role.INVENTORY, Role.GRNI)
    if kind is EventKind.OPENING_BALANCE:
        return (Role.INVENTORY, Role.OPENING_BALANCE)
    if kind is EventKind.VENDOR_BILL:
        if standard:
            return (Role.GRNI, Role.AP, Role.PPV)
        return (Role.GRNI, Role.AP, Role.PPV, Role.INVENTORY, Role.COGS)
    if kind is EventKind.PURCHASE_RETURN:
        return (Role.INVENTORY, Role.GRNI, Role.PPV)
    if kind is EventKind.SHIPMENT:
        return (Role.INVENTORY, Role.GSNI if on_invoice else Role.COGS)
    if kind is EventKind.CUSTOMER_INVOICE:
        return (Role.COGS, Role.GSNI) if on_invoice else ()
    if kind is EventKind.SALES_RETURN:
        return (Role.INVENTORY, Role.COGS, Role.GSNI) if on_invoice else (Role.INVENTORY, Role.COGS)
    if kind is EventKind.TRANSFER:
        return (Role.INVENTORY,)
    if kind in (EventKind.ADJUSTMENT, EventKind.CYCLE_COUNT):
        return (Role.INVENTORY, Role.INVENTORY_ADJUSTMENT)
    if kind in (EventKind.PRODUCTION_ISSUE, EventKind.PRODUCTION_COMPLETE):
        return (Role.INVENTORY, Role.WIP)
    if kind in UNIT_COST_KINDS:
        return (Role.INVENTORY, Role.REVALUATION)
    if kind is EventKind.LANDED_COST:
        if standard:
            return (Role.PPV, Role.LANDED_COST_CLEARING)
        return (Role.INVENTORY, Role.COGS, Role.LANDED_COST_CLEARING)
    return (Role.INVENTORY,)  # transfers, kit components


def _accounts(setup: Setup, roles: Iterable[Role], location: Location, category: str,
              reason: str | None, missing: list[str]) -> dict[Role, int]:
    roles = tuple(roles)
    key = ("acc", roles, location.code, category, reason)
    cached = setup.memo.get(key)
    if cached is not None:
        accounts, lacking = cached
    else:
        accounts, lacking = {}, []
        for role in roles:
            account = setup.account_for(role, location.entity.code, location.code, category,
                                        reason if role is Role.INVENTORY_ADJUSTMENT else None)
            if account is None:
                lacking.append(f"{role.value} (entity {location.entity.code}, location "
                               f"{location.code}, category {category}"
                               + (f", reason {reason}" if role is Role.INVENTORY_ADJUSTMENT else "")
                               + ")")
            else:
                accounts[role] = account.id
        setup.memo[key] = (accounts, lacking)
    missing.extend(m for m in lacking if m not in missing)
    return accounts


def _decimal_ok(value: Decimal | None, what: str, maximum: int) -> None:
    if value is None:
        return
    if not value.is_finite():
        raise _invalid(f"{what} is not a finite number")
    if abs(value) > maximum:
        raise _invalid(f"{what} {value} is out of range (at most {maximum})")


class Prepared(NamedTuple):
    """The reference-free half of resolution, in plain values (cheap to send
    between processes). `lines` holds, per line: (product id, qty in base
    micro-units as sent (signed), amount in minor units or None, lot, and — only
    when the currency is not yet known — the sent qty and price as text)."""

    version: int
    kind: str
    date: int
    location_id: int | None
    to_location_id: int | None
    reason: str | None
    ref: str | None
    ref_source: str | None
    lines: tuple
    extra_cost: str | None = None  # assembly, as sent
    order: str | None = None  # production order
    amount: str | None = None  # production_cost, landed_cost, as sent
    refs: tuple = ()  # landed_cost: (source, id) of each receipt
    allocate: str | None = None  # landed_cost


def resolve(req: EventInput, *, event_id: int, setup: Setup,
            find_ref: RefFinder) -> tuple[Event | Reversal, Rejection | None]:
    """Resolve `req` or raise the first Rejection in SPEC 10 order.

    Returns the event and the deferred UNMAPPED_ACCOUNT rejection (or None).
    """
    return complete(prepare(req, setup), event_id=event_id, source=req.source, ext_id=req.id,
                    setup=setup, find_ref=find_ref)


def prepare(req: EventInput, setup: Setup) -> Prepared:
    """Structure, sign, location, SKU, UOM and lot checks, and the arithmetic,
    in SPEC 10 order: everything that needs neither references nor ids."""
    kind = _KINDS.get(req.type)
    if kind is None:
        kinds = ", ".join(k.value for k in EventKind)
        raise _invalid(f"unknown type {req.type!r} (expected one of: {kinds})") from None
    if kind not in SUPPORTED_KINDS:
        raise _invalid(f"event type {kind.value} is not supported by this version of stockledger")
    date = req.date_ymd
    if date is None:
        raise _invalid("date is required (YYYY-MM-DD)")
    ref_source = req.ref_source or req.source
    if kind is EventKind.REVERSAL:
        if req.ref is None:
            raise _invalid("a reversal needs ref (the id of the event it reverses)")
        try:
            has_lines = bool(req.line_inputs())
        except ValueError:
            has_lines = True
        if has_lines:
            raise _invalid("a reversal has no lines: it reverses the event named by ref")
        return Prepared(setup.version, kind.value, date, None, None, None, req.ref, ref_source, ())

    try:
        raw_lines = req.line_inputs()
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    _check_structure(kind, req, raw_lines)

    # -- locations ------------------------------------------------------------
    location: Location | None = None
    to_location: Location | None = None
    if kind is EventKind.TRANSFER:
        location = _location(setup, req.from_, "from")
        to_location = _location(setup, req.to, "to")
    elif req.location is not None:
        location = _location(setup, req.location, "location")

    # -- products, UOMs, lots: one pass, the first problem of each class kept ----
    products: list[Product] = []
    factors: list[Decimal] = []
    unknown_sku = unknown_uom = lot_missing = None
    check_lots = kind not in (EventKind.VENDOR_BILL, EventKind.CUSTOMER_INVOICE)
    needs_lot = setup.lot_products
    several = len(raw_lines) > 1
    for n, raw in enumerate(raw_lines):
        product = setup.product(raw.sku)  # type: ignore[arg-type]
        if product is None:
            if unknown_sku is None:
                unknown_sku = Rejection(ErrorCode.UNKNOWN_SKU, f"unknown SKU {raw.sku!r}"
                                        + (f" on line {n + 1}" if several else ""))
            continue
        products.append(product)
        if raw.uom is None:
            factor = product.uom.factor
        else:
            factor = setup.uom_factor(raw.uom, product)
            if factor is None:
                if unknown_uom is None:
                    unknown_uom = Rejection(
                        ErrorCode.UNKNOWN_UOM, f"unknown UOM {raw.uom!r} for {product.sku}"
                        if raw.uom not in setup.uoms else f"UOM {raw.uom!r} does not convert "
                        f"to {product.sku}'s base unit {product.base_uom}")
                continue
        factors.append(factor)
        if check_lots and not raw.lot and product.id in needs_lot and lot_missing is None:
            lot_missing = Rejection(ErrorCode.LOT_REQUIRED, f"{product.sku} is valued by "
                                    f"specific lot: each line needs a lot")
    first = unknown_sku or unknown_uom or lot_missing
    if first is not None:
        unknown_sku = unknown_uom = lot_missing = None
        raise Rejection(first.code, first.message)

    # -- quantities and amounts ---------------------------------------------------
    invoice = kind is EventKind.CUSTOMER_INVOICE
    unit_kind = kind in UNIT_COST_KINDS
    exp = location.entity.exp if location is not None else setup.uniform_exp
    amount_max = limits.AMOUNT_UNITS_MAX * 10**exp if exp is not None else None
    lines = []
    for raw, product, factor in zip(raw_lines, products, factors):
        if unit_kind:  # sku and a unit cost per its UOM: kept per base unit
            unit = raw.unit_cost / factor  # type: ignore[operator]
            lines.append((product.id, 0, None, raw.lot or None, None, None, str(unit)))
            continue
        qty_sent: Decimal = raw.qty  # type: ignore[assignment]
        qty_base = qty_sent if factor == 1 else qty_sent * factor
        try:
            qty = qty_to_micro(qty_base)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        if abs(qty_base) > limits.QTY_UNITS_MAX:
            raise _invalid(f"quantity {qty_sent} is out of range")
        price = raw.unit_price if invoice or kind is EventKind.TRANSFER else raw.unit_cost
        if price is None:
            lines.append((product.id, qty, None, raw.lot or None, None, None, None))
        elif exp is None:  # a document in a multi-currency setup: priced once its ref is known
            lines.append((product.id, qty, None, raw.lot or None, str(qty_sent), str(price), None))
        else:
            amount = amount_minor(qty_sent, price, exp)
            if abs(amount) > amount_max:  # type: ignore[operator]
                raise _invalid(f"line amount {qty_sent} x {price} is out of range")
            lines.append((product.id, qty, amount, raw.lot or None, None, None, None))
    reason = req.reason if kind is EventKind.ADJUSTMENT else (
        "cycle_count" if kind is EventKind.CYCLE_COUNT else None)
    extra = getattr(req, "extra_cost", None)
    amount_sent = getattr(req, "amount", None)
    refs = tuple((ref_source, ref) for ref in (getattr(req, "refs", None) or ()))
    return Prepared(setup.version, kind.value, date,
                    location.id if location is not None else None,
                    to_location.id if to_location is not None else None,
                    reason, req.ref if kind in REF_KINDS else None, ref_source, tuple(lines),
                    str(extra) if extra is not None and kind is EventKind.ASSEMBLY else None,
                    getattr(req, "order", None) if kind in PRODUCTION_KINDS else None,
                    str(amount_sent) if amount_sent is not None else None,
                    refs, (getattr(req, "allocate", None) or "value")
                    if kind is EventKind.LANDED_COST else None)


def complete(prepared: Prepared, *, event_id: int, source: str, ext_id: str, setup: Setup,
             find_ref: RefFinder) -> tuple[Event | Reversal, Rejection | None]:
    """References, accounts and the resolved records (SPEC 10 order continues:
    references, then the deferred account check)."""
    (_, kind_text, date, location_id, to_location_id, reason, ref_id, ref_source, raw_lines,
     extra_cost, order, amount_text, _, _) = prepared
    kind = _KINDS[kind_text]
    if kind is KIND.REVERSAL:
        return _resolve_reversal(prepared, event_id, source, ext_id, setup, find_ref), None
    locations_by_id = setup._locations_by_id
    location = locations_by_id[location_id] if location_id else None
    to_location = locations_by_id[to_location_id] if to_location_id else None
    if kind is KIND.LANDED_COST:
        return _complete_landed_cost(prepared, event_id, source, ext_id, setup, find_ref)
    if kind is KIND.COST_UPDATE:
        return _complete_cost_update(prepared, event_id, source, ext_id, setup, location)

    # -- references -----------------------------------------------------------
    ref: Event | None = None
    if ref_id is not None:
        ref = _resolve_ref(ref_id, ref_source, kind, date, find_ref)  # type: ignore[arg-type]
        if location is None:
            location = ref.location
        if kind is KIND.SALES_RETURN and location is not None and ref.location is not None \
                and location.entity.id != ref.location.entity.id:
            raise _invalid(f"sales return at {location.code} ({location.entity.code}) for a "
                           f"shipment of entity {ref.location.entity.code}")
    if location is None:
        raise _invalid("location is required")

    # -- lines, accounts ------------------------------------------------------------
    missing: list[str] = []
    entity = location.entity
    lines: list[Line] = []
    to_accounts: list[Accounts] = []
    memo = setup.memo
    location_key = location.id
    to_id = to_location.id if to_location is not None else None
    products_by_id = setup._products_by_id
    for n, (product_id, qty, amount, lot, qty_text, price_text, unit_text) in \
            enumerate(raw_lines):
        product = products_by_id[product_id]
        if price_text is not None:
            amount = amount_minor(Decimal(qty_text), Decimal(price_text), entity.exp)
            if abs(amount) > limits.AMOUNT_UNITS_MAX * 10**entity.exp:
                raise _invalid(f"line amount {qty_text} x {price_text} is out of range")
        ref_index = _ref_line(ref, product, kind) if ref is not None else None
        plan = memo.get((kind, product_id, location_key, to_id, reason))
        if plan is None:
            plan = _line_plan(setup, kind, product, location, to_location, reason)
        line_accounts, components, line_to_accounts, lacking = plan
        if lacking:
            missing.extend(m for m in lacking if m not in missing)
        if len(components) == 1 and components[0][2] is None:
            slot, part_product, _, part_accounts = components[0]
            parts: tuple[Part, ...] = (
                _new(Part, (slot, part_product, qty if qty >= 0 else -qty, part_accounts)),)
        else:
            built = []
            for slot, part_product, per_unit, part_accounts in components:
                try:
                    part_qty = qty_to_micro(abs(qty) * per_unit / QTY_SCALE_DECIMAL)
                except ValueError:
                    raise _invalid(f"component {part_product.sku} quantity has more than 6 "
                                   f"decimal places") from None
                built.append(Part(slot, part_product, part_qty, part_accounts))
            parts = tuple(built)
        if line_to_accounts is not None:
            to_accounts.append(line_to_accounts)
        lines.append(_new(Line, (n, product, qty, amount, lot, line_accounts, parts, ref_index,
                                 Decimal(unit_text) if unit_text is not None else None, None)))

    event_accounts: Accounts = {}
    if kind is KIND.PRODUCTION_COST:
        event_accounts = _accounts(setup, (Role.WIP, Role.APPLIED_OVERHEAD), location, None,
                                   None, missing)
    if to_location is not None and to_location.entity.id != entity.id \
            and to_location.entity.currency != entity.currency:
        raise _invalid(f"a transfer from {entity.code} ({entity.currency}) to "
                       f"{to_location.entity.code} ({to_location.entity.currency}) crosses "
                       f"currencies, which stockledger does not convert")
    # positional, in Event's field order (the keyword form costs twice as much)
    event = _new(Event, (
        event_id, source, ext_id, kind, date, setup.version, entity, location, tuple(lines),
        to_location, tuple(to_accounts), ref, reason,
        (_money(extra_cost, entity.exp, "extra_cost") or 0) if extra_cost is not None else 0,
        order, _money(amount_text, entity.exp, "amount") if amount_text is not None else None,
        event_accounts, (), None, ()))
    unmapped = None
    if missing:
        unmapped = Rejection(ErrorCode.UNMAPPED_ACCOUNT, "no account mapped for role "
                             + "; ".join(missing))
    return event, unmapped


def _line_plan(setup: Setup, kind: EventKind, product: Product, location: Location,
               to_location: Location | None, reason: str | None) -> tuple:
    """Accounts and parts of a line, memoised per (kind, product, location, reason):
    (line accounts, [(slot, product, qty per unit or None, accounts)], destination
    accounts or None, unmapped roles)."""
    key = (kind, product.id, location.id, to_location.id if to_location else None, reason)
    plan = setup.memo.get(key)
    if plan is not None:
        return plan
    if kind in KIT_KINDS and product.kind is not ProductKind.KIT:
        raise _invalid(f"{product.sku} is not a kit: only kits are assembled and disassembled")
    if product.kind is ProductKind.BUNDLE and kind not in (
            EventKind.SHIPMENT, EventKind.CUSTOMER_INVOICE, EventKind.SALES_RETURN):
        raise _invalid(f"{product.sku} is a bundle: bundles are shipped, invoiced and "
                       f"returned, never received, moved or counted")
    if kind in UNIT_COST_KINDS and (product.method is Method.STANDARD) != (
            kind is EventKind.COST_UPDATE):
        raise _invalid(f"{product.sku} is valued at {product.method.value}: cost_update is for "
                       f"standard-cost products, revaluation for the others")
    missing: list[str] = []
    own_roles: tuple[Role, ...] = ()
    if kind is EventKind.CUSTOMER_INVOICE:
        own_roles = (Role.AR, Role.REVENUE)
    elif kind is EventKind.ASSEMBLY:
        own_roles = (Role.INVENTORY, Role.APPLIED_OVERHEAD)
    elif kind is EventKind.DISASSEMBLY:
        own_roles = (Role.INVENTORY,)
    line_accounts = _accounts(setup, own_roles, location, product.category.code, reason,
                              missing) if own_roles else {}
    components = []
    if product.kind is ProductKind.BUNDLE or kind in KIT_KINDS:
        stocked = [(c.qty, setup.products[c.sku]) for c in product.components]
    else:
        stocked = [(None, product)]
    cross = to_location is not None and to_location.entity.id != location.entity.id
    for slot, (per_unit, part_product) in enumerate(stocked):
        roles = roles_for(kind, part_product)
        if cross:
            roles = roles + (Role.IC_RECEIVABLE, Role.IC_GAIN)
        components.append((slot, part_product, per_unit,
                           _accounts(setup, roles, location, part_product.category.code, reason,
                                     missing)))
    to_accounts = None
    if to_location is not None:
        to_accounts = _accounts(setup, (Role.INVENTORY, Role.IC_PAYABLE) if cross
                                else (Role.INVENTORY,), to_location, product.category.code,
                                None, missing)
    plan = (line_accounts, tuple(components), to_accounts, tuple(missing))
    setup.memo[key] = plan
    return plan


def _money(text: str | None, exp: int, what: str) -> int | None:
    if text is None:
        return None
    amount = round_money(Decimal(text), exp)
    if abs(amount) > limits.AMOUNT_UNITS_MAX * 10**exp:
        raise _invalid(f"{what} {text} is out of range")
    return amount


def _complete_landed_cost(prepared: Prepared, event_id: int, source: str, ext_id: str,
                          setup: Setup, find_ref: RefFinder) -> tuple[Event, Rejection | None]:
    """A landed cost is allocated over every line of the receipts it names, in
    `refs` order: one resolved line per receipt line."""
    kind = EventKind.LANDED_COST
    receipts: list[Event] = []
    for ref_source, ref_id in prepared.refs:
        receipt = _resolve_ref(ref_id, ref_source, kind, prepared.date, find_ref)
        if receipts and receipt.entity.id != receipts[0].entity.id:
            raise _invalid(f"landed cost over receipts of two entities ({receipts[0].entity.code}"
                           f", {receipt.entity.code})")
        receipts.append(receipt)
    first = receipts[0]
    entity = first.entity
    missing: list[str] = []
    lines: list[Line] = []
    scope = tuple(loc for loc in setup.locations.values() if loc.entity.id == entity.id)
    for receipt in receipts:
        for line in receipt.lines:
            product = line.product
            accounts = _accounts(setup, roles_for(kind, product), receipt.location,  # type: ignore[arg-type]
                                 product.category.code, None, missing)
            # one part per location of the entity: where transferred goods may now be
            parts = tuple(Part(slot, product, line.parts[0].qty,
                               _accounts(setup, (Role.INVENTORY,), loc, product.category.code,
                                         None, missing))
                          for slot, loc in enumerate(scope))
            lines.append(Line(len(lines), product, line.parts[0].qty, line.amount or 0, None,
                              accounts, parts, line.index, None, receipt))
    amount = _money(prepared.amount, entity.exp, "amount")
    event = Event(id=event_id, source=source, ext_id=ext_id, kind=kind, date=prepared.date,
                  config_version=setup.version, entity=entity, location=first.location,
                  lines=tuple(lines), ref=first, amount=amount, refs=tuple(receipts),
                  allocate=prepared.allocate, scope=scope)
    unmapped = None
    if missing:
        unmapped = Rejection(ErrorCode.UNMAPPED_ACCOUNT, "no account mapped for role "
                             + "; ".join(missing))
    return event, unmapped


def _complete_cost_update(prepared: Prepared, event_id: int, source: str, ext_id: str,
                          setup: Setup, location: Location | None
                          ) -> tuple[Event, Rejection | None]:
    """A standard-cost update applies at every location of the event's entity
    (of every entity without a location): one part per location."""
    kind = EventKind.COST_UPDATE
    scope = tuple(loc for loc in setup.locations.values()
                  if location is None or loc.entity.id == location.entity.id)
    if len(scope) >= 64:
        raise _invalid("a cost_update spans at most 63 locations: give a location to pick "
                       "one entity")
    missing: list[str] = []
    lines = []
    for n, (product_id, _, _, lot, _, _, unit_text) in enumerate(prepared.lines):
        product = setup.product_by_id(product_id)
        _line_plan(setup, kind, product, scope[0], None, None)  # the method check
        parts = tuple(Part(slot, product, 0, _accounts(setup, roles_for(kind, product), loc,
                                                       product.category.code, None, missing))
                      for slot, loc in enumerate(scope))
        lines.append(Line(n, product, 0, None, lot, {}, parts, None, Decimal(unit_text)))
    anchor = location or scope[0]
    event = Event(id=event_id, source=source, ext_id=ext_id, kind=kind, date=prepared.date,
                  config_version=setup.version, entity=anchor.entity, location=location,
                  lines=tuple(lines), scope=scope)
    unmapped = None
    if missing:
        unmapped = Rejection(ErrorCode.UNMAPPED_ACCOUNT, "no account mapped for role "
                             + "; ".join(missing))
    return event, unmapped


def _location(setup: Setup, code: str | None, field: str) -> Location:
    if code is None:
        raise _invalid(f"{field} is required")
    location = setup.locations.get(code)
    if location is None:
        raise Rejection(ErrorCode.UNKNOWN_LOCATION, f"unknown location {code!r}")
    return location


def _check_structure(kind: EventKind, req: EventInput, raw_lines: Sequence[LineInput]) -> None:
    """INVALID_EVENT checks: required fields, signs, ranges (before any lookup)."""
    if kind in PRODUCTION_KINDS and not getattr(req, "order", None):
        raise _invalid(f"a {kind.value} needs order (the production order)")
    extra = getattr(req, "extra_cost", None)
    if extra is not None and extra < 0:
        raise _invalid("extra_cost must not be negative")
    if kind in NO_LINES:
        if raw_lines:
            raise _invalid(f"a {kind.value} has no lines")
        amount = getattr(req, "amount", None)
        if amount is None or amount < 0:
            raise _invalid(f"a {kind.value} needs a non-negative amount")
        if kind is EventKind.LANDED_COST and not getattr(req, "refs", None):
            raise _invalid("a landed_cost needs refs (the receipts it belongs to)")
        if kind is EventKind.PRODUCTION_COST and req.location is None:
            raise _invalid("location is required")
        return
    if not raw_lines:
        raise _invalid("the event has no lines (give sku and qty, or a list of lines)")
    if len(raw_lines) > limits.LINES_MAX:
        raise _invalid(f"too many lines ({len(raw_lines)}; at most {limits.LINES_MAX})")
    if kind is EventKind.TRANSFER:
        if req.from_ is None or req.to is None:
            raise _invalid("a transfer needs both from and to")
        if req.from_ == req.to:
            raise _invalid("a transfer needs two different locations")
    elif kind in NEEDS_LOCATION and req.location is None:
        raise _invalid("location is required")
    if kind in REF_REQUIRED and req.ref is None:
        raise _invalid(f"a {kind.value} needs ref (the id of the event it belongs to)")
    if kind is EventKind.ADJUSTMENT and not req.reason:
        raise _invalid("an adjustment needs a reason")
    positive = kind in POSITIVE_QTY
    nonzero = kind in NONZERO_QTY
    cost_required = kind in COST_REQUIRED
    invoice = kind is EventKind.CUSTOMER_INVOICE
    qty_max, price_max = limits.QTY_UNITS_MAX, limits.UNIT_PRICE_MAX
    if kind in UNIT_COST_KINDS:
        for n, raw in enumerate(raw_lines, 1):
            where = f"line {n}: " if len(raw_lines) > 1 else ""
            if not raw.sku:
                raise _invalid(f"{where}sku is required")
            if raw.unit_cost is None or raw.unit_cost < 0:
                raise _invalid(f"{where}a {kind.value} needs a non-negative unit_cost")
            _decimal_ok(raw.unit_cost, f"{where}unit_cost", limits.UNIT_PRICE_MAX)
        return
    for n, raw in enumerate(raw_lines, 1):
        qty, cost, price = raw.qty, raw.unit_cost, raw.unit_price
        if not raw.sku or qty is None or (positive and qty <= 0) or (nonzero and qty == 0) \
                or (qty < 0 and kind is EventKind.CYCLE_COUNT) or not -qty_max <= qty <= qty_max \
                or (cost is not None and not 0 <= cost <= price_max) \
                or (price is not None and not 0 <= price <= price_max) \
                or (cost_required and cost is None) or (invoice and price is None):
            _line_problem(kind, n if len(raw_lines) > 1 else None, raw)


def _line_problem(kind: EventKind, n: int | None, raw: LineInput) -> None:
    """Raise the INVALID_EVENT that explains what is wrong with one line."""
    where = f"line {n}: " if n is not None else ""
    if not raw.sku:
        raise _invalid(f"{where}sku is required")
    if raw.qty is None:
        raise _invalid(f"{where}qty is required")
    _decimal_ok(raw.qty, f"{where}qty", limits.QTY_UNITS_MAX)
    _decimal_ok(raw.unit_cost, f"{where}unit_cost", limits.UNIT_PRICE_MAX)
    _decimal_ok(raw.unit_price, f"{where}unit_price", limits.UNIT_PRICE_MAX)
    qty = raw.qty
    if kind in POSITIVE_QTY and qty <= 0:
        raise _invalid(f"{where}qty must be positive for a {kind.value}")
    if kind in NONZERO_QTY and qty == 0:
        raise _invalid(f"{where}qty must not be zero for a {kind.value}")
    if kind is EventKind.CYCLE_COUNT and qty < 0:
        raise _invalid(f"{where}a counted quantity cannot be negative")
    for name in ("unit_cost", "unit_price"):
        value = getattr(raw, name)
        if value is not None and value < 0:
            raise _invalid(f"{where}{name} must not be negative")
    if kind in COST_REQUIRED and raw.unit_cost is None:
        raise _invalid(f"{where}unit_cost is required for a {kind.value}")
    if kind is EventKind.CUSTOMER_INVOICE and raw.unit_price is None:
        raise _invalid(f"{where}unit_price is required for a customer_invoice")
    raise InvariantViolation("a line was flagged invalid without a reason")


def _resolve_ref(ref_id: str, ref_source: str, kind: EventKind, date: int,
                 find_ref: RefFinder) -> Event:
    found = find_ref(ref_source, ref_id)
    target = found.event
    if target is None:
        raise Rejection(ErrorCode.UNKNOWN_REFERENCE,
                        f"ref {ref_id!r} (source {ref_source}) is not a posted event")
    if not isinstance(target, Event) or target.kind not in REF_KINDS[kind]:
        wanted = " or ".join(k.value for k in REF_KINDS[kind])
        got = getattr(target.kind, "value", target.kind)
        raise _invalid(f"ref {ref_id!r} is a {got}; a {kind.value} must refer to a {wanted}")
    if found.reversed:
        raise Rejection(ErrorCode.UNKNOWN_REFERENCE, f"ref {ref_id!r} was reversed")
    if date < target.date:
        raise _invalid(f"dated {ymd_text(date)}, before {target.kind.value} {ref_id!r} "
                       f"({ymd_text(target.date)}) it refers to")
    return target


def _ref_line(ref: Event, product: Product, kind: EventKind) -> int:
    for line in ref.lines:
        if line.product.id == product.id:
            return line.index
    raise Rejection(ErrorCode.OVER_RETURN, f"{ref.kind.value} {ref.ext_id!r} has no line for "
                    f"{product.sku}, so this {kind.value} cannot refer to it")


def _resolve_reversal(prepared: Prepared, event_id: int, source: str, ext_id: str,
                      setup: Setup, find_ref: RefFinder) -> Reversal:
    ref_id, ref_source = prepared.ref, prepared.ref_source
    found = find_ref(ref_source, ref_id)  # type: ignore[arg-type]
    if found.event is None:
        raise Rejection(ErrorCode.UNKNOWN_REFERENCE,
                        f"ref {ref_id!r} (source {ref_source}) is not a posted event")
    if isinstance(found.event, Reversal):
        raise _invalid(f"{ref_id!r} is itself a reversal and cannot be reversed")
    if not isinstance(found.event, Event):
        raise _invalid(f"{ref_id!r} is a manual journal entry: correct it with another "
                       f"manual entry")
    if found.reversed:
        raise Rejection(ErrorCode.ALREADY_REVERSED, f"{ref_id!r} was already reversed")
    if found.live_documents:
        docs = ", ".join(found.live_documents[:5])
        raise _invalid(f"{ref_id!r} cannot be reversed while documents refer to it "
                       f"(reverse them first: {docs})")
    return Reversal(event_id, source, ext_id, prepared.date, setup.version, found.event)
