"""Bad input is kept, never lost, never half-posted (SPEC 3, 7, 10).

One file mixes good events with every kind of malformed line. Every bad line
becomes an exception-queue entry with the right code, nothing of a bad event
is posted, every good event of the same file still posts, and the subledger
still reconciles with the GL. A file of binary garbage gives exceptions,
never a crash."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stockledger.service.ingest import parse_file, parse_lines, post_events
from stockledger.service.reports import (
    exceptions_list,
    exceptions_retry,
    journal,
    reconcile,
    valuation,
)
from tests.conftest import base_setup
from tests.unit.builders import balances, event

GOOD = [
    # 10 @ 5.00 = 50.00
    event("g1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="10", unit_cost="5.00"),
    # 2 cases of 12 @ 60.00 = 24 EA for 120.00
    event("g2", "receipt", "2026-01-03", location="WH1", sku="W-001", qty="2", uom="CS12",
          unit_cost="60.00"),
    # 4 shipped FIFO from g1: 20.00
    event("g3", "shipment", "2026-01-04", location="WH1", sku="WIDGET-1", qty="4"),
    # bill for g1 at 5.20: AP 52.00, GRNI cleared 50.00; of the 2.00, 6 of 10 still on hand ->
    # 1.20 to inventory (g1's layer), 0.80 to COGS
    event("g4", "vendor_bill", "2026-01-05", ref="g1", sku="WIDGET-1", qty="10", unit_cost="5.20"),
    # invoice for g3: 4 x 9.00 = 36.00
    event("g5", "customer_invoice", "2026-01-06", ref="g3", sku="WIDGET-1", qty="4",
          unit_price="9.00"),
    # 1 damaged, FIFO from g1's layer (6 for 31.20): 5.20
    event("g6", "adjustment", "2026-01-07", location="WH1", sku="WIDGET-1", qty="-1",
          reason="damage"),
]
EXPECTED_BALANCES = {"1200": "36.00", "1300": "146.00", "2000": "-52.00", "2100": "-120.00",
                     "4000": "-36.00", "5000": "20.80", "5210": "5.20"}
EXPECTED_STOCK = [{"sku": "WIDGET-1", "location": "WH1", "qty": "29", "value": "146.00"}]


def receipt(id: str, **changes: Any) -> str:
    doc = {"id": id, "type": "receipt", "date": "2026-01-08", "location": "WH1",
           "sku": "WIDGET-1", "qty": "1", "unit_cost": "5.00"}
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


# id -> (line, code). Each line has one problem (so its code is certain).
NAMED_BAD: dict[str, tuple[str | bytes, str]] = {
    "b-no-type": (receipt("b-no-type", type=None), "INVALID_EVENT"),
    "b-no-date": (receipt("b-no-date", date=None), "INVALID_EVENT"),
    "b-no-qty": (receipt("b-no-qty", qty=None), "INVALID_EVENT"),
    "b-no-sku": (receipt("b-no-sku", sku=None), "INVALID_EVENT"),
    "b-qty-abc": (receipt("b-qty-abc", qty="abc"), "INVALID_EVENT"),
    "b-qty-bool": (receipt("b-qty-bool", qty=True), "INVALID_EVENT"),
    "b-qty-nan": (receipt("b-qty-nan", qty="NaN"), "INVALID_EVENT"),
    "b-qty-inf": (receipt("b-qty-inf", qty="Infinity"), "INVALID_EVENT"),
    "b-month-13": (receipt("b-month-13", date="2026-13-45"), "INVALID_EVENT"),
    "b-feb-30": (receipt("b-feb-30", date="2026-02-30"), "INVALID_EVENT"),
    "b-date-number": (receipt("b-date-number", date=20260108), "INVALID_EVENT"),
    "b-type": (receipt("b-type", type="teleport"), "INVALID_EVENT"),
    "b-lines-text": (receipt("b-lines-text", sku=None, qty=None, unit_cost=None, lines="abc"),
                     "INVALID_EVENT"),
    "b-both-forms": (receipt("b-both-forms", lines=[{"sku": "WIDGET-1", "qty": "1",
                                                     "unit_cost": "5"}]), "INVALID_EVENT"),
    "b-no-lines": (receipt("b-no-lines", sku=None, qty=None, unit_cost=None), "INVALID_EVENT"),
    "b-sku": (receipt("b-sku", sku="NOPE-9"), "UNKNOWN_SKU"),
    "b-location": (receipt("b-location", location="WH9"), "UNKNOWN_LOCATION"),
    "b-uom": (receipt("b-uom", uom="BOX"), "UNKNOWN_UOM"),
    "b-ref": (event("b-ref", "vendor_bill", "2026-01-08", ref="zzz", sku="WIDGET-1", qty="1",
                    unit_cost="5.00"), "UNKNOWN_REFERENCE"),
    "b-ref-queued": (event("b-ref-queued", "customer_invoice", "2026-01-08", ref="b-sku",
                           sku="WIDGET-1", qty="1", unit_price="9.00"), "UNKNOWN_REFERENCE"),
    "b-huge-number": (('{"id": "b-huge-number", "type": "receipt", "date": "2026-01-08", '
                      '"location": "WH1", "sku": "WIDGET-1", "qty": 1e30, "unit_cost": "5.00"}'),
                      "INVALID_EVENT"),
    "b-huge-text": (receipt("b-huge-text", qty="1E+30"), "INVALID_EVENT"),
    "b-huge-cost": (receipt("b-huge-cost", unit_cost="1e30"), "INVALID_EVENT"),
    "b-7-decimals": (receipt("b-7-decimals", qty="0.1234567"), "INVALID_EVENT"),
    "b-neg-cost": (receipt("b-neg-cost", unit_cost="-1.00"), "INVALID_EVENT"),
    "b-neg-price": (event("b-neg-price", "customer_invoice", "2026-01-08", ref="g3",
                          sku="WIDGET-1", qty="1", unit_price="-9.00"), "INVALID_EVENT"),
    "b-neg-qty": (receipt("b-neg-qty", qty="-3"), "INVALID_EVENT"),
    "b-zero-qty": (event("b-zero-qty", "shipment", "2026-01-08", location="WH1", sku="WIDGET-1",
                         qty="0"), "INVALID_EVENT"),
    "b-extra-field": (receipt("b-extra-field", colour="red"), "INVALID_EVENT"),
    "b-extra-line-field": (receipt("b-extra-line-field", sku=None, qty=None, unit_cost=None,
                                   lines=[{"sku": "WIDGET-1", "qty": "1", "unit_cost": "5",
                                           "discount": "1"}]), "INVALID_EVENT"),
    "b-bill-before-receipt": (event("b-bill-before-receipt", "vendor_bill", "2026-01-01",
                                    ref="g1", sku="WIDGET-1", qty="1", unit_cost="5.00"),
                              "INVALID_EVENT"),
    "b-over-invoice": (event("b-over-invoice", "customer_invoice", "2026-01-08", ref="g3",
                             sku="WIDGET-1", qty="1", unit_price="9.00"), "OVER_RETURN"),
    "b-too-much": (event("b-too-much", "shipment", "2026-01-08", location="WH1", sku="WIDGET-1",
                         qty="1000"), "INSUFFICIENT_STOCK"),
    # a NUL character (escaped in the JSON) inside a text field: malformed, not a SKU to look up
    "b-nul-in-sku": (receipt("b-nul-in-sku", sku="WIDGET\u00001"), "INVALID_EVENT"),
    # a malformed resend of a posted id: a conflict, and g1 stays as posted
    "g1": (receipt("g1", qty="abc"), "CONFLICT"),
}

# Lines without a usable id: queued under an "unparsed-..." key, code INVALID_EVENT.
UNPARSED_BAD: list[str | bytes] = [
    '{"id": "m1", "type": "receipt", "date": ',        # cut short
    '{"id": "m2" "type": "receipt"}',                  # a comma missing
    "[1, 2, 3]",                                       # an array
    "42",                                              # a bare number
    '"just a string"',
    "null",
    "{}",
    '{"id": null, "type": "receipt", "date": "2026-01-08", "location": "WH1"}',  # null id
    receipt(""),                                       # an empty id
    json.dumps({"type": "receipt", "date": "2026-01-08", "location": "WH1", "sku": "WIDGET-1",
                "qty": "1", "unit_cost": "5.00"}),     # no id at all
    b'\xff\xfe{"id": "m3", "type": "receipt"}',        # not UTF-8
    "this is not json at all",
    receipt("x" * 300),                                # an id longer than 200 characters
    '{"id": "m5", "type": "receipt", "padding": "' + "x" * 1_100_000 + '"}',  # over 1 MB
]


def setup() -> dict[str, Any]:
    return base_setup(uoms=[{"code": "EA"}, {"code": "CS12", "base": "EA", "factor": "12"}],
                      products=[{"sku": "WIDGET-1", "category": "FG", "uom": "EA",
                                 "aliases": ["W-001"]}])


def mixed_lines() -> list[str | bytes]:
    """Good events with the bad lines spread between them (the good ones stay in order)."""
    bad = [line for line, _ in NAMED_BAD.values()] + UNPARSED_BAD
    rng = random.Random(20260102)
    rng.shuffle(bad)
    out: list[str | bytes] = []
    per_gap = len(bad) // len(GOOD) + 1
    for n, good in enumerate(GOOD):
        out.append(good)
        out.extend(bad[n * per_gap:(n + 1) * per_gap])
    # documents whose ref must already be posted or queued go last
    late = {NAMED_BAD[k][0] for k in ("b-ref-queued", "b-over-invoice", "b-neg-price",
                                      "b-bill-before-receipt", "g1")}
    return [line for line in out if line not in late] + [line for line in out if line in late]


def write_jsonl(path: Path, lines: Iterable[str | bytes]) -> Path:
    with open(path, "wb") as handle:
        handle.writelines((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines)
    return path


def read_with(mode: str, path: Path, ws: Any) -> Iterable[Any]:
    if mode == "lines":
        return parse_lines(path.read_bytes().split(b"\n"))
    if mode == "file":
        return parse_file(str(path), "bad.jsonl ", helper=False)
    return parse_file(str(path), "bad.jsonl ", helper=True, setup=ws.current_setup())


@pytest.mark.parametrize("mode", ["lines", "file", "parser-process"])
def test_bad_lines_are_queued_and_good_events_still_post(make_workspace, tmp_path: Path,
                                                          mode: str) -> None:
    ws = make_workspace(setup())
    path = write_jsonl(tmp_path / "bad.jsonl", mixed_lines())
    summary = post_events(ws, read_with(mode, path, ws), keep_results=True)

    results = [(r.ext_id, r.status, r.code) for r in summary.results]
    posted = [ext_id for ext_id, status, _ in results if status == "posted"]
    assert posted == ["g1", "g2", "g3", "g4", "g5", "g6"]
    # every named bad line: its code
    got = {ext_id: code for ext_id, status, code in results if status == "exception"
           and not ext_id.startswith("unparsed-")}
    wanted = {key: code for key, (_, code) in NAMED_BAD.items()}
    wrong = {k: f"wanted {wanted.get(k)}, got {got.get(k)}" for k in set(wanted) | set(got)
             if wanted.get(k) != got.get(k)}
    assert not wrong, wrong
    # every line without a usable id: INVALID_EVENT under its own unparsed key
    unparsed = [(ext_id, code) for ext_id, status, code in results
                if ext_id.startswith("unparsed-")]
    # (an id longer than 200 characters is queued under an unparsed key too: a cut of it
    # could collide with another; docs/decisions/0008)
    assert len(unparsed) == len(UNPARSED_BAD)
    assert {code for _, code in unparsed} == {"INVALID_EVENT"}
    assert len({ext_id for ext_id, _ in unparsed}) == len(unparsed)
    assert summary.posted == len(GOOD)
    assert summary.exceptions == len(NAMED_BAD) + len(UNPARSED_BAD)
    assert summary.duplicates == 0

    # the queue holds every bad line, with its code and a message a user can act on
    queued = exceptions_list(ws)
    assert len(queued) == len(NAMED_BAD) + len(UNPARSED_BAD)
    by_id = {e["id"]: e for e in queued}
    for key, (_, code) in NAMED_BAD.items():
        assert by_id[key]["code"] == code and by_id[key]["message"], by_id[key]
    assert "first difference" in by_id["g1"]["message"]
    for item in queued:
        if item["id"].startswith("unparsed-"):
            assert "line " in item["message"], item

    # nothing of a bad event was posted: exactly the good events' accounting
    assert balances(ws) == EXPECTED_BALANCES
    assert valuation(ws)["lines"] == EXPECTED_STOCK
    assert {e["event"]["id"] for e in journal(ws)} == {"g1", "g2", "g3", "g4", "g5", "g6"}
    assert reconcile(ws)["status"] == "balanced"


def test_posting_the_same_bad_file_again_changes_nothing(make_workspace, tmp_path: Path) -> None:
    ws = make_workspace(setup())
    path = write_jsonl(tmp_path / "bad.jsonl", mixed_lines())
    first = post_events(ws, parse_file(str(path), helper=False), keep_results=True)
    before = (balances(ws), exceptions_list(ws))
    again = post_events(ws, parse_file(str(path), helper=False), keep_results=True)
    # everything is either posted or queued with the same content: all duplicates ...
    assert (again.posted, again.exceptions) == (0, 0), [
        (r.ext_id, r.code) for r in again.results if r.status == "exception"]
    assert again.duplicates == first.total
    assert (balances(ws), exceptions_list(ws)) == before


@pytest.mark.parametrize("date", ["1767312000", "0", "86400", "20260108", "2026-1-8",
                                  "2026-01-08T00:00:00", "08/01/2026", ""])
def test_a_date_must_be_written_yyyy_mm_dd(make_workspace, date: str) -> None:
    """SPEC 3: `date` is YYYY-MM-DD. Anything else (a Unix timestamp in a string included:
    "1767312000" is 2026-01-02 00:00 UTC, "0" is 1970-01-01) is INVALID_EVENT, not a date."""
    ws = make_workspace(setup())
    summary = post_events(ws, parse_lines([GOOD[0], receipt("b-date", date=date)]),
                          keep_results=True)
    assert {r.ext_id: r.code or r.status for r in summary.results} == {
        "g1": "posted", "b-date": "INVALID_EVENT"}
    # only g1's 10 @ 5.00 is posted
    assert balances(ws) == {"1300": "50.00", "2100": "-50.00"}
    assert {e["event"]["id"] for e in journal(ws)} == {"g1"}


def test_windows_line_endings_and_blank_lines_are_fine(make_workspace, tmp_path: Path) -> None:
    ws = make_workspace(setup())
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\r\n".join(line.encode() for line in GOOD[:3]) + b"\r\n\r\n   \r\n")
    summary = post_events(ws, parse_file(str(path), helper=False), keep_results=True)
    assert (summary.posted, summary.exceptions) == (3, 0)
    # 50.00 + 120.00 in, 4 out FIFO at 5.00 = 20.00
    assert balances(ws) == {"1300": "150.00", "2100": "-170.00", "5000": "20.00"}


@pytest.mark.parametrize("line", [b'{"id": "m4", "type": "rec\x00eipt"}', b"\x00\x00\x00",
                                  b'{"id": "m5", "type": "receipt"}\x00'],
                         ids=["inside-a-string", "only-nuls", "after-the-object"])
def test_a_line_with_a_raw_nul_byte_is_queued(make_workspace, line: bytes) -> None:
    ws = make_workspace(setup())
    summary = post_events(ws, parse_lines([GOOD[0].encode(), line, GOOD[2].encode()]),
                          keep_results=True)
    assert sorted((r.ext_id, r.status, r.code) for r in summary.results
                  if r.status == "posted") == [("g1", "posted", None), ("g3", "posted", None)]
    assert (summary.posted, summary.exceptions, dict(summary.by_code)) == (
        2, 1, {"INVALID_EVENT": 1})
    assert [e["code"] for e in exceptions_list(ws)] == ["INVALID_EVENT"]
    # g1 10 @ 5.00 in, g3 4 out FIFO = 20.00
    assert balances(ws) == {"1300": "30.00", "2100": "-50.00", "5000": "20.00"}


def test_an_escaped_nul_character_in_the_id_does_not_break_the_batch(make_workspace) -> None:
    """JSON may carry U+0000 as "\\u0000". Whether such an id is accepted or queued as
    INVALID_EVENT, the events around it must post and the engine must not crash."""
    ws = make_workspace(setup())
    odd = receipt("r\u0000x")
    odd_source = receipt("r2", source="erp\u0000")
    summary = post_events(ws, parse_lines([GOOD[0], odd, odd_source, GOOD[2]]),
                          keep_results=True)
    assert summary.posted + summary.exceptions == 4
    assert {r.ext_id for r in summary.results if r.status == "posted"} >= {"g1", "g3"}
    assert set(summary.by_code) <= {"INVALID_EVENT"}
    assert reconcile(ws)["status"] == "balanced"


def garbage(seed: int, size: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    return data


def expected_garbage_lines(data: bytes) -> int:
    pieces = data.split(b"\n")
    return len({piece.strip() for piece in pieces if piece.strip()})


@pytest.mark.parametrize("helper", [False, True], ids=["file", "parser-process"])
def test_a_file_of_binary_garbage_gives_exceptions_not_a_crash(make_workspace, tmp_path: Path,
                                                                helper: bool) -> None:
    ws = make_workspace(setup())
    post_events(ws, parse_lines([GOOD[0]]))
    data = garbage(7, 40_000)
    path = tmp_path / "garbage.bin"
    path.write_bytes(data)
    summary = post_events(ws, parse_file(str(path), "garbage.bin ", helper=helper,
                                         setup=ws.current_setup() if helper else None),
                          keep_results=True)
    lines = expected_garbage_lines(data)
    assert lines > 50
    assert summary.posted == 0
    assert summary.exceptions + summary.duplicates == sum(
        1 for piece in data.split(b"\n") if piece.strip())
    assert set(summary.by_code) == {"INVALID_EVENT"}
    queued = exceptions_list(ws)
    assert len(queued) == summary.exceptions
    assert {e["code"] for e in queued} == {"INVALID_EVENT"}
    # the ledger is what it was: g1's 10 @ 5.00
    assert balances(ws) == {"1300": "50.00", "2100": "-50.00"}
    assert reconcile(ws)["status"] == "balanced"


def test_a_file_of_binary_garbage_through_the_cli(tmp_path: Path) -> None:
    from tests.cli.transcript import Cli

    cli = Cli(tmp_path)
    cli.init(setup())
    cli.write("garbage.bin", garbage(11, 20_000))
    result = cli.json("post", "garbage.bin")
    assert result["posted"] == 0 and result["exceptions"] > 20
    assert set(result["by_code"]) == {"INVALID_EVENT"}
    assert cli.json("reconcile")["status"] == "balanced"


# ---------------------------------------------------------------------------
# Never a crash: seeded mutations of valid events of every type. Each mutated
# event is posted alone; it must be posted, a duplicate or an exception with a
# SPEC code, and the ledger must still reconcile. A Python exception escaping
# post_events (a crash that loses the whole batch) is a bug.
# ---------------------------------------------------------------------------

def rich_setup() -> dict[str, Any]:
    doc = base_setup()
    doc["categories"] = [{"code": "FG", "valuation": "fifo"},
                         {"code": "AVG", "valuation": "average", "cogs_on": "invoice"},
                         {"code": "STD", "valuation": "standard"},
                         {"code": "LOT", "valuation": "specific"}]
    doc["uoms"] = [{"code": "EA"}, {"code": "CS12", "base": "EA", "factor": "12"}]
    doc["products"] = [
        {"sku": "WIDGET-1", "category": "FG", "uom": "EA"},
        {"sku": "AV-1", "category": "AVG", "uom": "EA"},
        {"sku": "ST-1", "category": "STD", "uom": "EA", "standard_cost": "5.00"},
        {"sku": "LOT-1", "category": "LOT", "uom": "EA"},
        {"sku": "KIT-A", "category": "FG", "uom": "EA", "kind": "kit",
         "components": [{"sku": "WIDGET-1", "qty": "2"}]},
        {"sku": "GIFT-B", "category": "FG", "uom": "EA", "kind": "bundle",
         "components": [{"sku": "WIDGET-1", "qty": "1"}, {"sku": "AV-1", "qty": "1"}]},
    ]
    doc["locations"] = [{"code": "WH1", "entity": "ACME"}, {"code": "WH2", "entity": "ACME"}]
    return doc


def _e(id: str, type: str, date: str, **fields: Any) -> dict[str, Any]:
    return json.loads(event(id, type, date, **fields))


RICH_HISTORY = [
    _e("r1", "receipt", "2026-01-02", location="WH1", lines=[
        {"sku": "WIDGET-1", "qty": "20", "unit_cost": "5.00"},
        {"sku": "AV-1", "qty": "10", "unit_cost": "3.00"},
        {"sku": "ST-1", "qty": "10", "unit_cost": "5.50"},
        {"sku": "LOT-1", "qty": "5", "unit_cost": "4.00", "lot": "L1"}]),
    _e("o1", "opening_balance", "2026-01-01", location="WH2", sku="AV-1", qty="3",
       unit_cost="2.00"),
    _e("b1", "vendor_bill", "2026-01-03", ref="r1", sku="WIDGET-1", qty="5", unit_cost="5.10"),
    _e("s1", "shipment", "2026-01-04", location="WH1", lines=[
        {"sku": "WIDGET-1", "qty": "3"}, {"sku": "AV-1", "qty": "2"}, {"sku": "GIFT-B", "qty": "1"}]),
    _e("i1", "customer_invoice", "2026-01-05", ref="s1", sku="AV-1", qty="1", unit_price="9.00"),
    _e("sr1", "sales_return", "2026-01-05", ref="s1", location="WH1", sku="WIDGET-1", qty="1"),
    _e("pr1", "purchase_return", "2026-01-05", ref="r1", location="WH1", sku="WIDGET-1", qty="1"),
    _e("t1", "transfer", "2026-01-06", from_="WH1", to="WH2", sku="WIDGET-1", qty="2"),
    _e("a1", "adjustment", "2026-01-06", location="WH1", reason="damage", sku="WIDGET-1", qty="-1"),
    _e("c1", "cycle_count", "2026-01-07", location="WH1", sku="AV-1", qty="6"),
    _e("k1", "assembly", "2026-01-07", location="WH1", sku="KIT-A", qty="2", extra_cost="3.00"),
    _e("k2", "disassembly", "2026-01-08", location="WH1", sku="KIT-A", qty="1"),
    _e("p1", "production_issue", "2026-01-08", location="WH1", order="MO1", sku="WIDGET-1",
       qty="2"),
    _e("p2", "production_cost", "2026-01-08", location="WH1", order="MO1", amount="7.00"),
    _e("p3", "production_complete", "2026-01-09", location="WH1", order="MO1", sku="AV-1",
       qty="1"),
    _e("cu1", "cost_update", "2026-01-09", location="WH1", sku="ST-1", unit_cost="6.00"),
    _e("v1", "revaluation", "2026-01-09", location="WH1", sku="WIDGET-1", unit_cost="4.00"),
    _e("x1", "reversal", "2026-01-09", ref="a1"),
    _e("l1", "landed_cost", "2026-01-10", refs=["r1"], amount="12.00", allocate="value"),
]
ODD_VALUES = [None, "", "-1", "0", "abc", 1e30, "1e30", [], {}, True, "0.0000001", "-0.5",
              "WH2", "r1", "s1", "NOPE", "x" * 250, ["r1", "s1"], 2, "2026-01-01", "9999-12-31"]
EVENT_FIELDS = ["id", "type", "date", "location", "from", "to", "ref", "ref_source", "reason",
                "order", "amount", "refs", "allocate", "extra_cost", "sku", "qty", "uom",
                "unit_cost", "unit_price", "lot", "lines", "source"]
LINE_FIELDS = ["sku", "qty", "uom", "unit_cost", "unit_price", "lot", "extra"]
CODES = {"INVALID_EVENT", "UNKNOWN_SKU", "UNKNOWN_LOCATION", "UNKNOWN_UOM", "UNMAPPED_ACCOUNT",
         "INSUFFICIENT_STOCK", "LOT_REQUIRED", "PERIOD_CLOSED", "CONFLICT", "UNKNOWN_REFERENCE",
         "ALREADY_REVERSED", "OVER_RETURN"}
MUTATIONS = 200


def mutate(rng: random.Random, n: int) -> str:
    doc = json.loads(json.dumps(rng.choice(RICH_HISTORY)))
    doc["id"] = f"f{n}"
    for _ in range(rng.randint(1, 3)):
        target = doc
        if isinstance(doc.get("lines"), list) and doc["lines"] and rng.random() < 0.5 \
                and isinstance(doc["lines"][0], dict):
            target = rng.choice(doc["lines"])
        field = rng.choice(EVENT_FIELDS if target is doc else LINE_FIELDS)
        value = rng.choice(ODD_VALUES)
        if value is None and rng.random() < 0.5:
            target.pop(field, None)
        else:
            target[field] = value
    return json.dumps(doc)


def test_the_rich_history_posts_and_reconciles(make_workspace) -> None:
    ws = make_workspace(rich_setup())
    summary = post_events(ws, parse_lines([json.dumps(e) for e in RICH_HISTORY]),
                          keep_results=True)
    assert [(r.ext_id, r.code) for r in summary.results if r.status != "posted"] == []
    assert reconcile(ws)["status"] == "balanced"


@pytest.mark.parametrize("policy", ["reject", "allow"])
def test_mutated_events_of_every_type_never_crash_the_engine(make_workspace, policy: str) -> None:
    ws = make_workspace({**rich_setup(), "policies": {"negative_stock": policy}})
    history = [json.dumps(e) for e in RICH_HISTORY]
    crashes: list[str] = []
    for line in history:  # one batch each: later events find earlier ones in the database
        try:
            post_events(ws, parse_lines([line]))
        except Exception as exc:  # noqa: BLE001
            ws.forget_uncommitted()
            crashes.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} <- {line}")
    rng = random.Random(f"mutations-{policy}")
    queued: set[str] = set()
    for n in range(MUTATIONS):
        line = mutate(rng, n)
        try:
            summary = post_events(ws, parse_lines([line]), keep_results=True)
        except Exception as exc:  # noqa: BLE001
            ws.forget_uncommitted()
            crashes.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} <- {line}")
            continue
        assert summary.total == 1, line
        result = summary.results[0]
        if result.status == "exception":
            assert result.code in CODES and result.message, (result, line)
            queued.add(result.ext_id)
        if n % 25 == 0:
            assert reconcile(ws)["status"] == "balanced", line
    kinds = sorted({c.split(" <- ")[0] for c in crashes})
    assert not crashes, f"{len(crashes)} crash(es), {len(kinds)} kind(s):\n" + "\n".join(
        next(c for c in crashes if c.startswith(k)) for k in kinds)
    assert queued <= {e["id"] for e in exceptions_list(ws)}
    assert reconcile(ws)["status"] == "balanced"


@contextmanager
def fresh_workspace(backend: str, folder: Path, name: str, doc: dict[str, Any]) -> Iterator[Any]:
    """A new, initialised workspace of its own (several per test)."""
    from stockledger.service.scenario import temporary_database
    from stockledger.service.workspace import Workspace, check_setup, init_workspace
    from tests.conftest import pg_url

    if backend == "sqlite":
        with Workspace(f"sqlite:///{folder / name}.db") as ws:
            init_workspace(ws, check_setup(doc))
            yield ws
        return
    with temporary_database(pg_url(), prefix="stockledger_test") as url:
        with Workspace(url) as ws:
            init_workspace(ws, check_setup(doc))
            yield ws


FILE_SEEDS = {"sqlite": 24, "postgresql": 6}


def test_files_of_mutated_events_never_crash_the_engine(backend: str, tmp_path: Path) -> None:
    """Whole files: the valid history and 150 mutations, shuffled, posted in small batches
    (documents meet their references in the same batch or an earlier one), then retried."""
    crashes: list[str] = []
    for seed in range(FILE_SEEDS[backend]):
        rng = random.Random(seed)
        doc = {**rich_setup(), "policies": {"negative_stock": rng.choice(["reject", "allow"])}}
        lines = [json.dumps(e) for e in RICH_HISTORY] + [mutate(rng, n) for n in range(150)]
        rng.shuffle(lines)
        with fresh_workspace(backend, tmp_path, f"seed{seed}", doc) as ws:
            try:
                summary = post_events(ws, parse_lines(lines), keep_results=True,
                                      batch_size=rng.choice([7, 50, 1000]))
                assert summary.total == len(lines)
                exceptions_retry(ws)
                assert reconcile(ws)["status"] == "balanced", f"seed {seed}"
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001
                first = str(exc).splitlines()[0][:200]
                crashes.append(f"seed {seed}: {type(exc).__name__}: {first}")
    assert not crashes, "\n".join(crashes)


# The mutation tests' findings, as plain reproductions.

R1 = json.loads(GOOD[0])
LANDED = _e("l1", "landed_cost", "2026-01-03", refs=["g1"], amount="12.00", allocate="value")


@pytest.mark.parametrize(("document", "balances_after"), [
    # bill for 5 of g1 at 5.10 = 25.50 after a 12.00 landed cost on g1 (10 @ 5.00):
    # GRNI cleared 25.00, the 0.50 difference all on hand -> inventory 62.50
    (_e("b1", "vendor_bill", "2026-01-04", ref="g1", sku="WIDGET-1", qty="5", unit_cost="5.10"),
     {"1300": "62.50", "2000": "-25.50", "2100": "-25.00", "2200": "-12.00"}),
    # return 1 of g1's 10 after the landed cost (layer 10 for 62.00): cost 6.20, GRNI 5.00,
    # PPV 1.20
    (_e("pr1", "purchase_return", "2026-01-04", ref="g1", location="WH1", sku="WIDGET-1",
        qty="1"),
     {"1300": "55.80", "2100": "-45.00", "2200": "-12.00", "5100": "1.20"}),
], ids=["vendor_bill", "purchase_return"])
def test_documents_on_a_receipt_after_its_landed_cost(make_workspace, document: dict,
                                                      balances_after: dict) -> None:
    """SPEC 4: a landed cost raises the receipt's layer; the receipt can still be billed and
    returned afterwards (each posted in its own batch, as separate files would be)."""
    ws = make_workspace(setup())
    for doc in (R1, LANDED):
        assert post_events(ws, parse_lines([json.dumps(doc)])).posted == 1
    assert balances(ws) == {"1300": "62.00", "2100": "-50.00", "2200": "-12.00"}
    summary = post_events(ws, parse_lines([json.dumps(document)]), keep_results=True)
    assert outcome_of(summary) == {document["id"]: "posted"}
    assert balances(ws) == balances_after
    assert reconcile(ws)["status"] == "balanced"


def test_a_cost_update_without_location_revalues_every_location(make_workspace) -> None:
    """SPEC 4/10: cost_update (standard; sku, unit_cost) revalues every location with stock,
    round((new - old) x qty) each; a location is not required."""
    ws = make_workspace(rich_setup())
    post_events(ws, parse_lines([
        event("r1", "receipt", "2026-01-02", location="WH1", sku="ST-1", qty="10",
              unit_cost="5.00"),
        event("r2", "receipt", "2026-01-02", location="WH2", sku="ST-1", qty="4",
              unit_cost="5.00")]))
    summary = post_events(ws, parse_lines([event("cu1", "cost_update", "2026-01-05", sku="ST-1",
                                                 unit_cost="6.00")]), keep_results=True)
    assert outcome_of(summary) == {"cu1": "posted"}
    # (6.00 - 5.00) x 10 at WH1 + (6.00 - 5.00) x 4 at WH2 = 14.00 to inventory, from revaluation
    assert balances(ws) == {"1300": "84.00", "2100": "-70.00", "5300": "-14.00"}
    assert {(line["location"], line["value"]) for line in valuation(ws)["lines"]} == {
        ("WH1", "60.00"), ("WH2", "24.00")}
    assert reconcile(ws)["status"] == "balanced"


@pytest.mark.parametrize("field", ["source", "id"])
def test_an_overlong_source_or_id_is_queued_not_a_crash(make_workspace, field: str) -> None:
    """Ids and sources are at most limits.ID_LENGTH_MAX (200) characters; a longer one makes
    the event INVALID_EVENT, on every backend (PostgreSQL enforces column lengths)."""
    ws = make_workspace(setup())
    long = json.loads(receipt("b-long"))
    long[field] = "y" * 250
    summary = post_events(ws, parse_lines([GOOD[0], json.dumps(long), GOOD[2]]),
                          keep_results=True)
    assert (summary.posted, summary.exceptions, dict(summary.by_code)) == (
        2, 1, {"INVALID_EVENT": 1})
    assert [e["code"] for e in exceptions_list(ws)] == ["INVALID_EVENT"]
    assert balances(ws) == {"1300": "30.00", "2100": "-50.00", "5000": "20.00"}


@pytest.mark.parametrize("stray", [{"unit_cost": "0"}, {"lot": "L9"}, {"uom": "EA"}])
def test_an_empty_lines_list_beside_a_line_field_is_stored_as_it_was_read(
        make_workspace, stray: dict) -> None:
    """A production_cost sent with "lines": [] and a stray one-line field. Whether it is
    accepted or INVALID_EVENT, what is stored must read back as the same event: the order's
    completion, posted later in its own batch, must post (SPEC 3, 10: canonical content)."""
    ws = make_workspace(rich_setup())
    history = [
        # 20 @ 5.00; 2 issued to MO1 = 10.00 of WIP
        _e("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="20",
           unit_cost="5.00"),
        _e("p1", "production_issue", "2026-01-03", location="WH1", order="MO1", sku="WIDGET-1",
           qty="2"),
    ]
    assert post_events(ws, parse_lines([json.dumps(e) for e in history])).posted == 2
    cost = _e("p2", "production_cost", "2026-01-04", location="WH1", order="MO1", amount="7.00",
              lines=[], **stray)
    first = post_events(ws, parse_lines([json.dumps(cost)]), keep_results=True)
    accepted = outcome_of(first)["p2"] == "posted"
    assert outcome_of(first)["p2"] in ("posted", "INVALID_EVENT")
    complete = _e("p3", "production_complete", "2026-01-05", location="WH1", order="MO1",
                  sku="AV-1", qty="1")
    summary = post_events(ws, parse_lines([json.dumps(complete)]), keep_results=True)
    assert outcome_of(summary) == {"p3": "posted"}
    # the completion carries all WIP: 10.00 issued (+ 7.00 labour if p2 was accepted)
    made = [line for line in valuation(ws)["lines"] if line["sku"] == "AV-1"]
    assert made == [{"sku": "AV-1", "location": "WH1", "qty": "1",
                     "value": "17.00" if accepted else "10.00"}]
    assert reconcile(ws)["status"] == "balanced"


def outcome_of(summary: Any) -> dict[str, str]:
    return {r.ext_id: (r.code if r.status == "exception" else r.status) for r in summary.results}


def test_a_parser_process_that_dies_is_an_error_not_a_wait(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """Killed or out of memory, the parser process sends nothing more: the
    posting process must say so instead of waiting for ever."""
    import os

    from stockledger.service import ingest

    def dies(*_args: Any) -> None:
        os._exit(3)

    monkeypatch.setattr(ingest, "_parse_file_in_helper", dies)
    monkeypatch.setattr(ingest, "PARSER_CHECK_SECONDS", 0.05)
    path = tmp_path / "events.jsonl"
    path.write_text(GOOD[0] + "\n")
    with pytest.raises(RuntimeError, match="parser process ended without finishing .exit code 3"):
        list(parse_file(str(path), helper=True))
