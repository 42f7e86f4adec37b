"""Resolved events: canonical SKU, base-UOM quantity, exact amounts, resolved accounts.

Problem: code that handles "the event as sent" everywhere must re-check every
field everywhere. The edge validates the structure once (pydantic), then
``resolve`` turns it into an ``Event`` whose fields are all present and typed:
products and locations are master-data records, quantities are integer
micro-units of the base UOM, amounts are integer minor units, and each line
carries the accounts of every role its event type can post to. Code after
resolution never handles a missing field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Mapping, NamedTuple

from stockledger.domain.setup import Entity, Location, Product, Role


class EventKind(str, Enum):
    RECEIPT = "receipt"
    VENDOR_BILL = "vendor_bill"
    PURCHASE_RETURN = "purchase_return"
    SHIPMENT = "shipment"
    CUSTOMER_INVOICE = "customer_invoice"
    SALES_RETURN = "sales_return"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    CYCLE_COUNT = "cycle_count"
    OPENING_BALANCE = "opening_balance"
    ASSEMBLY = "assembly"
    DISASSEMBLY = "disassembly"
    PRODUCTION_ISSUE = "production_issue"
    PRODUCTION_COST = "production_cost"
    PRODUCTION_COMPLETE = "production_complete"
    LANDED_COST = "landed_cost"
    COST_UPDATE = "cost_update"
    REVALUATION = "revaluation"
    REVERSAL = "reversal"


# Kinds whose documents refer to another event through `ref`.
REF_KINDS = {
    EventKind.VENDOR_BILL: (EventKind.RECEIPT,),
    EventKind.PURCHASE_RETURN: (EventKind.RECEIPT,),
    EventKind.CUSTOMER_INVOICE: (EventKind.SHIPMENT,),
    EventKind.SALES_RETURN: (EventKind.SHIPMENT,),
    EventKind.LANDED_COST: (EventKind.RECEIPT,),  # through `refs`
}
REF_REQUIRED = {EventKind.VENDOR_BILL, EventKind.CUSTOMER_INVOICE, EventKind.REVERSAL}

SUPPORTED_KINDS = frozenset(EventKind)

KIT_KINDS = frozenset({EventKind.ASSEMBLY, EventKind.DISASSEMBLY})
PRODUCTION_KINDS = frozenset({EventKind.PRODUCTION_ISSUE, EventKind.PRODUCTION_COST,
                              EventKind.PRODUCTION_COMPLETE})
UNIT_COST_KINDS = frozenset({EventKind.COST_UPDATE, EventKind.REVALUATION})  # lines: sku, unit_cost


def ymd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def from_ymd(value: int) -> dt.date:
    return dt.date(value // 10000, value // 100 % 100, value % 100)


def ymd_text(value: int) -> str:
    return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"


Accounts = Mapping[Role, int]


class Part(NamedTuple):
    """What one line moves of one stocked product: the item itself, or one
    component of a bundle. `slot` numbers it within its line."""

    slot: int
    product: Product
    qty: int  # base micro-units, > 0
    accounts: Accounts


class Line(NamedTuple):
    index: int
    product: Product  # as sent (a bundle stays a bundle here)
    qty: int  # base micro-units, signed as sent
    amount: int | None  # minor units: qty x unit_cost or qty x unit_price, when given
    lot: str | None
    accounts: Accounts  # roles of the line's own product (ar/revenue of a bundle)
    parts: tuple[Part, ...]  # stocked products moved (the item, or a bundle's or kit's components)
    ref_index: int | None = None  # the referenced event's line, for documents
    unit: Decimal | None = None  # a unit cost per base unit (cost_update, revaluation)
    ref_event: "Event | None" = None  # the receipt a landed-cost line belongs to


class Event(NamedTuple):
    id: int  # arrival sequence, also the stored event id
    source: str
    ext_id: str
    kind: EventKind
    date: int  # yyyymmdd
    config_version: int
    entity: Entity
    location: Location | None
    lines: tuple[Line, ...]
    to_location: Location | None = None  # transfers
    to_accounts: tuple[Accounts, ...] = ()  # transfers: the destination's, per line
    ref: "Event | None" = None  # the referenced (base) event, resolved
    reason: str | None = None
    extra_cost: int = 0  # assembly: added to the kits built, credited to applied overhead
    order: str | None = None  # production order
    amount: int | None = None  # production_cost, landed_cost
    accounts: Accounts = {}  # roles of the event itself (production_cost)
    refs: tuple["Event", ...] = ()  # landed_cost: the receipts it is allocated over
    allocate: str | None = None  # landed_cost: "value" or "qty"
    scope: tuple[Location, ...] = ()  # cost_update: the locations revalued (a part each)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.ext_id)

    @property
    def entity_ids(self) -> frozenset[int]:
        ids = {self.entity.id}
        if self.to_location is not None:
            ids.add(self.to_location.entity.id)
        ids.update(location.entity.id for location in self.scope)
        return frozenset(ids)


@dataclass(frozen=True, slots=True)
class Reversal:
    """A reversal request, resolved: the event it cancels."""

    id: int
    source: str
    ext_id: str
    date: int
    config_version: int
    target: Event

    kind = EventKind.REVERSAL

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.ext_id)

    @property
    def entity(self) -> Entity:
        return self.target.entity

    @property
    def entity_ids(self) -> frozenset[int]:
        return self.target.entity_ids


@dataclass(frozen=True, slots=True)
class ManualEntry:
    """A manual journal entry as stored (not an inventory event: never replayed,
    never reversed; a wrong one is corrected by another manual entry)."""

    id: int
    source: str
    ext_id: str
    date: int
    entity_id: int

    kind = "manual_journal"

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.ext_id)
