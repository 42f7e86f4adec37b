"""The setup and the event shape of the simulator's *complex* streams (issue 5):
kits, bundles, production orders, landed costs, transfers within and across
two entities, standard-cost updates and write-downs.

Two entities in one currency: ACME (WH1, WH2) and SUB (EU1). Nine products:
five stocked items valued fifo, average, lifo, fifo with ``cogs_on: invoice``
and standard; two kits (one valued fifo, one average, with components of three
methods); a bundle with a ``cogs_on: invoice`` component; a produced good.
The inventory accounts differ by location, category and entity, so every
transfer and most kit builds post between two accounts.

``CEv`` extends the simple simulator's ``Ev`` with what the new event types
carry (order, amount, refs, allocate, extra_cost, several lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.conftest import base_setup
from tests.sim.streams import Ev

# sku -> (category, valuation, cogs_on, standard_cost)
ITEMS: dict[str, tuple[str, str, str, str | None]] = {
    "C1": ("FIFO", "fifo", "shipment", "4.50"),
    "C2": ("AVG", "average", "shipment", None),
    "C3": ("LIFO", "lifo", "shipment", None),
    "G1": ("FINV", "fifo", "invoice", None),
    "S1": ("STD", "standard", "shipment", "5.00"),
    "P1": ("LIFO", "lifo", "shipment", None),  # made by production orders
}
# kits are stocked (valued by their own category); bundles are not
KITS: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    "K1": ("FIFO", (("C1", 2), ("C2", 1))),
    "K2": ("AVG", (("C3", 1), ("S1", 2))),
}
BUNDLES: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    "B1": ("FIFO", (("C1", 1), ("G1", 2))),
}
CATEGORIES = {"FIFO": ("fifo", "shipment"), "AVG": ("average", "shipment"),
              "LIFO": ("lifo", "shipment"), "FINV": ("fifo", "invoice"),
              "STD": ("standard", "shipment")}

LOCATIONS = ("WH1", "WH2", "EU1")  # setup order (a landed cost's and cost_update's scope)
ENTITY = {"WH1": "ACME", "WH2": "ACME", "EU1": "SUB"}
ENTITIES = ("ACME", "SUB")
STOCKED = tuple(ITEMS) + tuple(KITS)
COMPONENTS = ("C1", "C2", "C3", "S1")  # what production orders issue

# Inventory: WH2 has its own account, category AVG its own, AVG at WH2 a third,
# and everything of SUB a fourth; SUB owes intercompany on its own account.
MAPPING = [
    {"role": "inventory", "location": "WH2", "account": "1320"},
    {"role": "inventory", "category": "AVG", "account": "1310"},
    {"role": "inventory", "category": "AVG", "location": "WH2", "account": "1330"},
    {"role": "inventory", "entity": "SUB", "account": "1340"},
    {"role": "ic_payable", "entity": "SUB", "account": "2510"},
]
EXTRA_ACCOUNTS = [
    {"code": "1340", "name": "Inventory - SUB", "type": "asset"},
    {"code": "2510", "name": "Intercompany payable - SUB", "type": "liability"},
]
INVENTORY_ACCOUNTS = ("1300", "1310", "1320", "1330", "1340")
WIP = "1400"


def category(sku: str) -> str:
    if sku in ITEMS:
        return ITEMS[sku][0]
    if sku in KITS:
        return KITS[sku][0]
    return BUNDLES[sku][0]


def inventory_account(sku: str, loc: str) -> str:
    if ENTITY[loc] == "SUB":
        return "1340"
    if category(sku) == "AVG":
        return "1330" if loc == "WH2" else "1310"
    return "1320" if loc == "WH2" else "1300"


def ic_payable(entity: str) -> str:
    return "2510" if entity == "SUB" else "2500"


def setup_document() -> dict[str, Any]:
    base = base_setup()
    products: list[dict[str, Any]] = []
    for sku, (cat, _, _, standard) in ITEMS.items():
        product: dict[str, Any] = {"sku": sku, "category": cat, "uom": "EA"}
        if standard is not None:
            product["standard_cost"] = standard
        products.append(product)
    for kind, table in (("kit", KITS), ("bundle", BUNDLES)):
        for sku, (cat, parts) in table.items():
            products.append({"sku": sku, "category": cat, "uom": "EA", "kind": kind,
                             "components": [{"sku": c, "qty": q} for c, q in parts]})
    return base_setup(
        entities=[{"code": "ACME", "currency": "USD"}, {"code": "SUB", "currency": "USD"}],
        accounts=list(base["accounts"]) + EXTRA_ACCOUNTS,
        categories=[{"code": c, "valuation": m, "cogs_on": o} for c, (m, o) in CATEGORIES.items()],
        products=products,
        locations=[{"code": code, "entity": ENTITY[code]} for code in LOCATIONS],
        mapping=list(base.get("mapping") or []) + MAPPING,
        policies={"negative_stock": "reject"},
    )


@dataclass
class CEv(Ev):
    """An event of a complex stream. `lines` (sku, qty) replaces sku/qty for an
    issue of several components; `loc` None on a cost_update means every entity."""

    order: str | None = None
    amount: Decimal | None = None
    refs: tuple[str, ...] | None = None
    allocate: str | None = None
    extra_cost: Decimal | None = None
    lines: tuple[tuple[str, Decimal], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "type": self.type, "date": _day(self.date)}
        if self.type == "transfer":
            doc["from"], doc["to"] = self.loc, self.to
        elif self.loc is not None and self.give_location and self.type != "landed_cost":
            doc["location"] = self.loc
        if self.ref is not None:
            doc["ref"] = self.ref
        if self.refs is not None:
            doc["refs"] = list(self.refs)
        if self.allocate is not None:
            doc["allocate"] = self.allocate
        if self.order is not None:
            doc["order"] = self.order
        if self.amount is not None:
            doc["amount"] = str(self.amount)
        if self.extra_cost is not None:
            doc["extra_cost"] = str(self.extra_cost)
        if self.reason is not None and self.type == "adjustment":
            doc["reason"] = self.reason
        if self.lines is not None:
            doc["lines"] = [{"sku": sku, "qty": str(qty)} for sku, qty in self.lines]
        elif self.sku is not None:
            doc["sku"] = self.sku
            if self.type not in ("cost_update", "revaluation"):
                doc["qty"] = str(self.qty)
        if self.unit_cost is not None:
            doc["unit_cost"] = str(self.unit_cost)
        if self.unit_price is not None:
            doc["unit_price"] = str(self.unit_price)
        return doc

    def items(self) -> tuple[tuple[str, Decimal], ...]:
        """(sku, qty) of each line."""
        if self.lines is not None:
            return self.lines
        return ((self.sku, self.qty),)  # type: ignore[return-value]


def _day(ymd: int) -> str:
    return f"{ymd // 10000:04d}-{ymd // 100 % 100:02d}-{ymd % 100:02d}"


def parts(sku: str, qty: Decimal) -> list[tuple[str, Decimal]]:
    """What a line of `sku` moves: a bundle its components, anything else itself."""
    if sku in BUNDLES:
        return [(component, qty * per) for component, per in BUNDLES[sku][1]]
    return [(sku, qty)]
