"""Master data (SPEC 2, 3): validation lists every problem at once; SKU lookup and
normalization; the most specific mapping rule wins, the later among equals."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stockledger.domain.errors import SetupError
from stockledger.domain.setup import Role, normalize_sku, validate_setup
from stockledger.service.workspace import check_setup
from tests.conftest import base_setup
from tests.unit.builders import setup_from


def product(sku: str, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "category": "FG", "uom": "EA", **fields}


def kit(sku: str, *components: str) -> dict[str, Any]:
    return product(sku, kind="kit", components=[{"sku": c, "qty": "1"} for c in components])


def test_the_base_setup_is_valid() -> None:
    assert validate_setup(base_setup()) == []


def test_every_problem_is_listed_at_once() -> None:
    doc = base_setup()
    doc["accounts"] = doc["accounts"] + [{"code": "1300", "name": "Again", "type": "asset"}]
    doc["roles"] = {**doc["roles"], "grni": "9999"}
    doc["mapping"] = doc["mapping"] + [
        {"role": "inventory", "location": "WH9", "account": "1310"},
        {"role": "cogs", "category": "NOPE", "account": "5999"},
    ]
    doc["locations"] = doc["locations"] + [{"code": "WH2", "entity": "GHOST"}]
    doc["products"] = doc["products"] + [
        product("widget.1"),                       # collides with WIDGET-1 once normalized
        product("GADGET", category="XX", uom="BOX"),
        kit("KIT-A", "NOT-A-SKU"),
        kit("KIT-B", "KIT-C"), kit("KIT-C", "KIT-B"),  # a cycle
    ]
    problems = validate_setup(doc)
    expected = [
        "accounts: duplicate code '1300'",
        "roles: grni points at unknown account '9999'",
        "mapping rule 2: unknown location 'WH9'",
        "mapping rule 3: unknown account '5999'",
        "mapping rule 3: unknown category 'NOPE'",
        "locations: WH2 belongs to unknown entity 'GHOST'",
        "products: 'widget.1' of widget.1 collides with WIDGET-1 (both normalize to 'widget1')",
        "products: GADGET has unknown category 'XX'",
        "products: GADGET has unknown uom 'BOX'",
        "products: KIT-A has unknown component 'NOT-A-SKU'",
        "products: component cycle KIT-B -> KIT-C -> KIT-B",
    ]
    for problem in expected:
        assert problem in problems, f"missing: {problem}\ngot: {problems}"
    assert len(problems) == len(expected), problems
    # the workspace entry point rejects the whole file with the same list
    with pytest.raises(SetupError) as info:
        check_setup(doc)
    assert info.value.problems == problems


def test_duplicate_codes_in_every_section() -> None:
    doc = base_setup()
    for section, key in (("entities", "code"), ("categories", "code"), ("uoms", "code"),
                         ("products", "sku"), ("locations", "code")):
        doc[section] = doc[section] + [copy.deepcopy(doc[section][0])]
    problems = validate_setup(doc)
    assert problems == [
        "entities: duplicate code 'ACME'",
        "categories: duplicate code 'FG'",
        "uoms: duplicate code 'EA'",
        "products: duplicate code 'WIDGET-1'",
        "locations: duplicate code 'WH1'",
    ]


@pytest.mark.parametrize(("products", "collision"), [
    # an alias of one product is another's SKU, once normalized
    ([product("WIDGET-1", aliases=["W-001"]), product("w_001")], "'w_001' of w_001 collides with WIDGET-1"),
    # two aliases that normalize alike
    ([product("WIDGET-1", aliases=["AB.C"]), product("OTHER", aliases=["ab c"])],
     "'ab c' of OTHER collides with WIDGET-1"),
    # case only
    ([product("WIDGET-1"), product("Widget-1")], "'Widget-1' of Widget-1 collides with WIDGET-1"),
])
def test_sku_and_alias_collisions_after_normalization(products: list, collision: str) -> None:
    problems = validate_setup(base_setup(products=products))
    assert len(problems) == 1 and collision in problems[0], problems


def test_an_alias_equal_to_its_own_sku_is_no_collision() -> None:
    doc = base_setup(products=[product("WIDGET-1", aliases=["widget 1", "W-001"])])
    assert validate_setup(doc) == []


def test_kits_with_unknown_or_cyclic_components() -> None:
    doc = base_setup(products=[
        product("WIDGET-1"),
        kit("SELF", "SELF"),
        kit("K1", "K2"), kit("K2", "K3"), kit("K3", "K1"),
        kit("K4", "GHOST", "WIDGET-1"),
        product("EMPTY", kind="kit", components=[]),
    ])
    problems = validate_setup(doc)
    assert "products: K4 has unknown component 'GHOST'" in problems
    assert "products: EMPTY is a kit without components" in problems
    assert "products: component cycle SELF -> SELF" in problems
    assert "products: component cycle K1 -> K2 -> K3 -> K1" in problems
    assert len(problems) == 4, problems


def test_other_value_problems() -> None:
    doc = base_setup()
    doc["accounts"] = doc["accounts"] + [{"code": "9000", "name": "Odd", "type": "asset-ish"}]
    doc["categories"] = [{"code": "FG", "valuation": "fifo", "cogs_on": "shipment"},
                         {"code": "RAW", "valuation": "hifo"}]
    doc["uoms"] = [{"code": "EA"}, {"code": "CS", "base": "EA"}, {"code": "PL", "base": "XX",
                                                                  "factor": "2"}]
    doc["entities"] = [{"code": "ACME", "currency": "US"}]
    doc["policies"] = {"negative_stock": "sometimes"}
    problems = validate_setup(doc)
    assert problems == [
        ("accounts: 9000 has unknown type 'asset-ish' (expected one of asset, liability, equity, "
        "income, expense)"),
        "categories: RAW has unknown valuation 'hifo'",
        "uoms: CS needs a positive factor",
        "uoms: PL has unknown base 'XX'",
        "entities: ACME has invalid currency 'US'",
        "policies: negative_stock must be one of reject, allow",
    ]


def test_structural_problems_are_listed_together_too() -> None:
    doc = base_setup()
    doc["products"] = [{"sku": "A", "category": "FG"}, {"sku": "B", "uom": "EA", "category": "FG",
                                                       "colour": "red"}]
    with pytest.raises(SetupError) as info:
        check_setup(doc)
    assert info.value.problems == ["products.0.uom: is required",
                                   "products.1.colour: is not a known field"]


# -- SKUs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("WIDGET-1", "widget1"),
    ("widget_1", "widget1"),
    (" Widget.1 ", "widget1"),
    ("W - 0 0 1", "w001"),
    ("a\tb", "ab"),
    ("Straße", "strasse"),  # case-folded, not just lowered
    ("--", ""),
])
def test_normalize_sku(text: str, expected: str) -> None:
    assert normalize_sku(text) == expected


def test_product_lookup_canonical_then_alias_then_normalized() -> None:
    setup = setup_from(base_setup(products=[product("WIDGET-1", aliases=["W-001"]),
                                            product("GADGET")]))
    assert setup.product("WIDGET-1").sku == "WIDGET-1"
    assert setup.product("W-001").sku == "WIDGET-1"
    assert setup.product("widget 1").sku == "WIDGET-1"
    assert setup.product("w_001").sku == "WIDGET-1"
    assert setup.product("gad.get").sku == "GADGET"
    assert setup.product("WIDGET-2") is None


# -- account mapping ------------------------------------------------------------------------------


def mapped(rules: list[dict[str, str]], locations: tuple[str, ...] = ("WH1", "WH2")):
    doc = base_setup(
        mapping=rules,
        categories=[{"code": "FG", "valuation": "fifo"}, {"code": "RAW", "valuation": "fifo"}],
        locations=[{"code": code, "entity": "ACME"} for code in locations],
    )
    assert validate_setup(doc) == []
    setup = setup_from(doc)

    def account(role: Role, location: str | None = None, category: str | None = None,
                reason: str | None = None) -> str | None:
        found = setup.account_for(role, "ACME", location, category, reason)
        return found.code if found is not None else None
    return account


def test_the_most_specific_rule_wins() -> None:
    account = mapped([
        {"role": "inventory", "location": "WH2", "category": "FG", "account": "1330"},
        {"role": "inventory", "category": "FG", "account": "1310"},
        {"role": "inventory", "location": "WH2", "account": "1320"},
    ])
    assert account(Role.INVENTORY, "WH1", "RAW") == "1300"   # the role's default
    assert account(Role.INVENTORY, "WH1", "FG") == "1310"    # category rule
    assert account(Role.INVENTORY, "WH2", "RAW") == "1320"   # location rule
    assert account(Role.INVENTORY, "WH2", "FG") == "1330"    # two qualifiers beat one
    assert account(Role.COGS, "WH2", "FG") == "5000"         # other roles untouched


@pytest.mark.parametrize(("first", "second", "winner"), [("1310", "1320", "1320"),
                                                          ("1320", "1310", "1310")])
def test_among_equally_specific_rules_the_later_wins(first: str, second: str, winner: str) -> None:
    account = mapped([
        {"role": "inventory", "category": "FG", "account": first},
        {"role": "inventory", "location": "WH1", "account": second},
    ])
    assert account(Role.INVENTORY, "WH1", "FG") == winner
    # where only one of them matches, that one applies
    assert account(Role.INVENTORY, "WH2", "FG") == first
    assert account(Role.INVENTORY, "WH1", "RAW") == second


def test_a_rule_without_qualifiers_overrides_the_role_default() -> None:
    account = mapped([{"role": "inventory", "account": "1310"}])
    assert account(Role.INVENTORY, "WH1", "FG") == "1310"


def test_reason_rules_and_unmapped_roles() -> None:
    doc_roles = {k: v for k, v in base_setup()["roles"].items() if k != "inventory_adjustment"}
    doc = base_setup(roles=doc_roles, mapping=[
        {"role": "inventory_adjustment", "reason": "damage", "account": "5210"}])
    assert validate_setup(doc) == []
    setup = setup_from(doc)
    found = setup.account_for(Role.INVENTORY_ADJUSTMENT, "ACME", "WH1", "FG", "damage")
    assert found is not None and found.code == "5210"
    # no default for the role and no rule for this reason: unmapped (None), never a fallback
    assert setup.account_for(Role.INVENTORY_ADJUSTMENT, "ACME", "WH1", "FG", "theft") is None
    assert setup.account_for(Role.INVENTORY_ADJUSTMENT, "ACME", "WH1", "FG") is None
