"""Master data: the chart of accounts, the posting-role mapping, products, UOMs, locations.

Problem: a posting engine that falls back to a default account when a mapping
is missing hides errors until the month-end reconciliation. Here a role that
resolves to no account is an ``UNMAPPED_ACCOUNT`` rejection of the event; the
most specific mapping rule wins (ties: the later rule), and the resolution is
memoised because the same handful of combinations repeat on every event.

``validate_setup`` checks a whole setup document at once and returns every
problem, so a user fixes the file in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable, Mapping

from stockledger.domain.money import UnitCost, minor_exp


class Method(str, Enum):
    FIFO = "fifo"
    LIFO = "lifo"
    AVERAGE = "average"
    STANDARD = "standard"
    SPECIFIC = "specific"


class CogsOn(str, Enum):
    SHIPMENT = "shipment"
    INVOICE = "invoice"


class Role(str, Enum):
    INVENTORY = "inventory"
    GRNI = "grni"
    AP = "ap"
    AR = "ar"
    REVENUE = "revenue"
    COGS = "cogs"
    GSNI = "gsni"
    PPV = "ppv"
    INVENTORY_ADJUSTMENT = "inventory_adjustment"
    REVALUATION = "revaluation"
    WIP = "wip"
    APPLIED_OVERHEAD = "applied_overhead"
    LANDED_COST_CLEARING = "landed_cost_clearing"
    IC_RECEIVABLE = "ic_receivable"
    IC_PAYABLE = "ic_payable"
    IC_GAIN = "ic_gain"
    OPENING_BALANCE = "opening_balance"


class ProductKind(str, Enum):
    ITEM = "item"
    KIT = "kit"
    BUNDLE = "bundle"


ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense")
NEGATIVE_STOCK_POLICIES = ("reject", "allow")


@dataclass(frozen=True, slots=True)
class Entity:
    id: int
    code: str
    currency: str
    exp: int


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    code: str
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    method: Method
    cogs_on: CogsOn


@dataclass(frozen=True, slots=True)
class Uom:
    code: str
    base: str  # itself when it is a base unit
    factor: Decimal  # base units per one of this unit


@dataclass(frozen=True, slots=True)
class Component:
    sku: str
    qty: Decimal  # per one unit of the kit or bundle, in the component's base UOM


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    category: Category
    uom: Uom
    aliases: tuple[str, ...]
    standard_cost: Decimal | None  # per unit of `uom`
    kind: ProductKind
    components: tuple[Component, ...]

    @property
    def base_uom(self) -> str:
        return self.uom.base

    @property
    def method(self) -> Method:
        return self.category.method


@dataclass(frozen=True, slots=True)
class Location:
    id: int
    code: str
    entity: Entity


@dataclass(frozen=True, slots=True)
class MappingRule:
    role: Role
    account: str
    entity: str | None = None
    location: str | None = None
    category: str | None = None
    reason: str | None = None

    @property
    def specificity(self) -> int:
        return sum(q is not None for q in (self.entity, self.location, self.category, self.reason))

    def matches(self, entity: str, location: str | None, category: str | None,
                reason: str | None) -> bool:
        return (
            (self.entity is None or self.entity == entity)
            and (self.location is None or self.location == location)
            and (self.category is None or self.category == category)
            and (self.reason is None or self.reason == reason)
        )


_NORMALIZE = re.compile(r"[\s\-_.]+")


def normalize_sku(text: str) -> str:
    """Case-insensitive, ignoring spaces, '-', '_' and '.' (SPEC 3)."""
    return _NORMALIZE.sub("", text).casefold()


@dataclass(frozen=True, slots=True)
class Policies:
    negative_stock: str = "reject"

    @property
    def allow_negative(self) -> bool:
        return self.negative_stock == "allow"


@dataclass(eq=False)
class Setup:
    """One version of the master data, with the lookups the engine needs."""

    version: int
    entities: Mapping[str, Entity]
    accounts: Mapping[str, Account]
    roles: Mapping[Role, str]
    rules: tuple[MappingRule, ...]
    categories: Mapping[str, Category]
    uoms: Mapping[str, Uom]
    products: Mapping[str, Product]
    locations: Mapping[str, Location]
    policies: Policies
    memo: dict = field(default_factory=dict, repr=False)  # resolution caches, per version
    lot_products: frozenset[int] = field(default=frozenset(), repr=False)  # need a lot per line
    uniform_exp: int | None = field(default=None, repr=False)  # currency decimals, if one for all
    _exact: dict[str, str] = field(default_factory=dict, repr=False)
    _normalized: dict[str, str] = field(default_factory=dict, repr=False)
    _account_cache: dict[tuple, Account | None] = field(default_factory=dict, repr=False)
    _accounts_by_id: dict[int, Account] = field(default_factory=dict, repr=False)
    _products_by_id: dict[int, Product] = field(default_factory=dict, repr=False)
    _locations_by_id: dict[int, Location] = field(default_factory=dict, repr=False)
    _entities_by_id: dict[int, Entity] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for product in self.products.values():
            self._exact[product.sku] = product.sku
            self._products_by_id[product.id] = product
        for product in self.products.values():
            for alias in product.aliases:
                self._exact.setdefault(alias, product.sku)
        for product in self.products.values():
            for name in (product.sku, *product.aliases):
                self._normalized.setdefault(normalize_sku(name), product.sku)
        self.lot_products = frozenset(
            p.id for p in self.products.values()
            if p.method is Method.SPECIFIC or (p.kind is ProductKind.BUNDLE and any(
                self.products[c.sku].method is Method.SPECIFIC for c in p.components)))
        exps = {e.exp for e in self.entities.values()}
        self.uniform_exp = exps.pop() if len(exps) == 1 else None
        self._accounts_by_id.update({a.id: a for a in self.accounts.values()})
        self._locations_by_id.update({loc.id: loc for loc in self.locations.values()})
        self._entities_by_id.update({e.id: e for e in self.entities.values()})

    # -- lookups -------------------------------------------------------------
    def product(self, text: str) -> Product | None:
        """Canonical SKU, then alias, then the normalized form of either."""
        sku = self._exact.get(text)
        if sku is None:
            sku = self._normalized.get(normalize_sku(text))
        return self.products.get(sku) if sku is not None else None

    def product_by_id(self, product_id: int) -> Product:
        return self._products_by_id[product_id]

    def account_by_id(self, account_id: int) -> Account:
        return self._accounts_by_id[account_id]

    def location_by_id(self, location_id: int) -> Location:
        return self._locations_by_id[location_id]

    def entity_by_id(self, entity_id: int) -> Entity:
        return self._entities_by_id[entity_id]

    def uom_factor(self, uom_code: str, product: Product) -> Decimal | None:
        """Base units per one `uom_code`, or None when it does not convert."""
        uom = self.uoms.get(uom_code)
        if uom is None or uom.base != product.base_uom:
            return None
        return uom.factor

    def standard_unit_cost(self, product: Product, exp: int) -> UnitCost | None:
        if product.standard_cost is None:
            return None
        per_base = product.standard_cost / product.uom.factor
        return UnitCost.from_decimal(per_base, exp)

    def account_for(self, role: Role, entity: str, location: str | None = None,
                    category: str | None = None, reason: str | None = None) -> Account | None:
        """The most specific rule wins; among equals the later one; None when unmapped."""
        key = (role, entity, location, category, reason)
        try:
            return self._account_cache[key]
        except KeyError:
            pass
        best: tuple[int, int] | None = None
        code: str | None = None
        if role in self.roles:
            best, code = (0, -1), self.roles[role]
        for index, rule in enumerate(self.rules):
            if rule.role is role and rule.matches(entity, location, category, reason):
                rank = (rule.specificity, index)
                if best is None or rank > best:
                    best, code = rank, rule.account
        account = self.accounts.get(code) if code is not None else None
        self._account_cache[key] = account
        return account


# ---------------------------------------------------------------------------
# Building and validating a setup document (plain dicts, already type-checked
# at the edge by the pydantic document model).
# ---------------------------------------------------------------------------

def _dupes(codes: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for code in codes:
        if code in seen and code not in dupes:
            dupes.append(code)
        seen.add(code)
    return dupes


def validate_setup(doc: Mapping[str, Any]) -> list[str]:
    """Every problem of a setup document, in file order; empty when valid."""
    problems: list[str] = []
    entities = doc.get("entities", [])
    accounts = doc.get("accounts", [])
    categories = doc.get("categories", [])
    uoms = doc.get("uoms", [])
    products = doc.get("products", [])
    locations = doc.get("locations", [])
    roles = doc.get("roles", {}) or {}
    mapping = doc.get("mapping", []) or []

    for section, items, key in (
        ("entities", entities, "code"), ("accounts", accounts, "code"),
        ("categories", categories, "code"), ("uoms", uoms, "code"),
        ("products", products, "sku"), ("locations", locations, "code"),
    ):
        for code in _dupes(item[key] for item in items):
            problems.append(f"{section}: duplicate code {code!r}")

    entity_codes = {e["code"] for e in entities}
    account_codes = {a["code"] for a in accounts}
    category_codes = {c["code"] for c in categories}
    location_codes = {loc["code"] for loc in locations}
    uom_by_code = {u["code"]: u for u in uoms}
    product_codes = {p["sku"] for p in products}

    if not entities:
        problems.append("entities: at least one entity is required")
    for account in accounts:
        if account.get("type") not in ACCOUNT_TYPES:
            problems.append(f"accounts: {account['code']} has unknown type {account.get('type')!r}"
                            f" (expected one of {', '.join(ACCOUNT_TYPES)})")
    for role, code in roles.items():
        if role not in Role._value2member_map_:
            problems.append(f"roles: unknown role {role!r}")
        if code not in account_codes:
            problems.append(f"roles: {role} points at unknown account {code!r}")
    for n, rule in enumerate(mapping, 1):
        where = f"mapping rule {n}"
        if rule.get("role") not in Role._value2member_map_:
            problems.append(f"{where}: unknown role {rule.get('role')!r}")
        if rule.get("account") not in account_codes:
            problems.append(f"{where}: unknown account {rule.get('account')!r}")
        if rule.get("entity") is not None and rule["entity"] not in entity_codes:
            problems.append(f"{where}: unknown entity {rule['entity']!r}")
        if rule.get("location") is not None and rule["location"] not in location_codes:
            problems.append(f"{where}: unknown location {rule['location']!r}")
        if rule.get("category") is not None and rule["category"] not in category_codes:
            problems.append(f"{where}: unknown category {rule['category']!r}")
    for category in categories:
        if category.get("valuation") not in Method._value2member_map_:
            problems.append(f"categories: {category['code']} has unknown valuation "
                            f"{category.get('valuation')!r}")
        if category.get("cogs_on", "shipment") not in CogsOn._value2member_map_:
            problems.append(f"categories: {category['code']} has unknown cogs_on "
                            f"{category.get('cogs_on')!r}")
    for uom in uoms:
        base = uom.get("base")
        if base is not None:
            if base not in uom_by_code:
                problems.append(f"uoms: {uom['code']} has unknown base {base!r}")
            elif uom_by_code[base].get("base") not in (None, base):
                problems.append(f"uoms: {uom['code']} has base {base!r}, which is not a base unit")
            if uom.get("factor") is None or Decimal(str(uom["factor"])) <= 0:
                problems.append(f"uoms: {uom['code']} needs a positive factor")
    for entity in entities:
        currency = entity.get("currency", "")
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
            problems.append(f"entities: {entity['code']} has invalid currency {currency!r}")
    for location in locations:
        if location.get("entity") not in entity_codes:
            problems.append(f"locations: {location['code']} belongs to unknown entity "
                            f"{location.get('entity')!r}")

    # SKU and alias collisions after normalization.
    owner: dict[str, str] = {}
    for product in products:
        names = [product["sku"], *(product.get("aliases") or [])]
        for name in names:
            norm = normalize_sku(name)
            if not norm:
                problems.append(f"products: {product['sku']} has an empty SKU or alias {name!r}")
                continue
            other = owner.get(norm)
            if other is not None and other != product["sku"]:
                problems.append(f"products: {name!r} of {product['sku']} collides with {other} "
                                f"(both normalize to {norm!r})")
            owner.setdefault(norm, product["sku"])

    for product in products:
        sku = product["sku"]
        if product.get("category") not in category_codes:
            problems.append(f"products: {sku} has unknown category {product.get('category')!r}")
        if product.get("uom") not in uom_by_code:
            problems.append(f"products: {sku} has unknown uom {product.get('uom')!r}")
        kind = product.get("kind", "item")
        if kind not in ProductKind._value2member_map_:
            problems.append(f"products: {sku} has unknown kind {kind!r}")
        components = product.get("components") or []
        if kind in ("kit", "bundle") and not components:
            problems.append(f"products: {sku} is a {kind} without components")
        if kind == "item" and components:
            problems.append(f"products: {sku} has components but is not a kit or bundle")
        for component in components:
            if component.get("sku") not in product_codes:
                problems.append(f"products: {sku} has unknown component {component.get('sku')!r}")
            elif Decimal(str(component.get("qty", 0))) <= 0:
                problems.append(f"products: {sku} component {component['sku']} needs a positive qty")
        cost = product.get("standard_cost")
        if cost is not None and Decimal(str(cost)) < 0:
            problems.append(f"products: {sku} has a negative standard_cost")
    problems.extend(_component_problems(products))

    policy = (doc.get("policies") or {}).get("negative_stock", "reject")
    if policy not in NEGATIVE_STOCK_POLICIES:
        problems.append(f"policies: negative_stock must be one of {', '.join(NEGATIVE_STOCK_POLICIES)}")
    return problems


def _component_problems(products: list[Mapping[str, Any]]) -> list[str]:
    """Kits and bundles whose components form a cycle, or nest bundles."""
    problems: list[str] = []
    graph = {p["sku"]: [c.get("sku") for c in (p.get("components") or [])] for p in products}
    kinds = {p["sku"]: p.get("kind", "item") for p in products}
    for sku, comps in graph.items():
        for comp in comps:
            if kinds.get(comp) == "bundle":
                problems.append(f"products: {sku} has bundle {comp} as a component "
                                f"(bundles are never stocked)")
    state: dict[str, int] = {}
    reported: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                key = " -> ".join(cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append(f"products: component cycle {key}")
            elif state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for sku in graph:
        if state.get(sku) is None:
            visit(sku, [sku])
    return problems


def build_setup(doc: Mapping[str, Any], version: int, ids: Mapping[str, Mapping[str, int]]) -> Setup:
    """A Setup from a valid document; `ids` gives the stored id of every code
    (keys "entities", "accounts", "skus", "locations")."""
    entities = {
        e["code"]: Entity(ids["entities"][e["code"]], e["code"], e["currency"].upper(),
                          minor_exp(e["currency"]))
        for e in doc["entities"]
    }
    accounts = {
        a["code"]: Account(ids["accounts"][a["code"]], a["code"], a.get("name", a["code"]), a["type"])
        for a in doc.get("accounts", [])
    }
    categories = {
        c["code"]: Category(c["code"], Method(c["valuation"]), CogsOn(c.get("cogs_on", "shipment")))
        for c in doc.get("categories", [])
    }
    uoms = {
        u["code"]: Uom(u["code"], u.get("base") or u["code"],
                       Decimal(str(u.get("factor", 1))) if u.get("base") else Decimal(1))
        for u in doc.get("uoms", [])
    }
    products = {}
    for p in doc.get("products", []):
        cost = p.get("standard_cost")
        products[p["sku"]] = Product(
            id=ids["skus"][p["sku"]],
            sku=p["sku"],
            category=categories[p["category"]],
            uom=uoms[p["uom"]],
            aliases=tuple(p.get("aliases") or ()),
            standard_cost=Decimal(str(cost)) if cost is not None else None,
            kind=ProductKind(p.get("kind", "item")),
            components=tuple(Component(c["sku"], Decimal(str(c["qty"])))
                             for c in (p.get("components") or ())),
        )
    locations = {
        loc["code"]: Location(ids["locations"][loc["code"]], loc["code"], entities[loc["entity"]])
        for loc in doc.get("locations", [])
    }
    roles = {Role(r): code for r, code in (doc.get("roles") or {}).items()}
    rules = tuple(
        MappingRule(Role(r["role"]), r["account"], r.get("entity"), r.get("location"),
                    r.get("category"), r.get("reason"))
        for r in (doc.get("mapping") or ())
    )
    policies = Policies(**(doc.get("policies") or {}))
    return Setup(version, entities, accounts, roles, rules, categories, uoms, products,
                 locations, policies)
