"""Idempotency (SPEC 3, 10): a key is (source, id); content is compared by meaning.

Content ignores `seq`, defaults `source`, treats the one-line shorthand and the
same `lines` form as equal and compares numbers by value ("5.00" = 5). Same key,
other content: CONFLICT naming the first differing field. Re-sending what sits
in the exception queue is a duplicate (it stays queued); different content
replaces the queued event."""

from __future__ import annotations

import json

import pytest

from stockledger.adapters.formats.requests import parse_event
from stockledger.service.reports import exceptions_list, exceptions_retry, journal
from tests.unit.builders import balances, event, outcome, post, queue

R1 = {"id": "r1", "type": "receipt", "date": "2026-01-02", "location": "WH1", "sku": "WIDGET-1",
      "qty": "10", "unit_cost": "5.00"}


def line(doc: dict) -> str:
    return json.dumps(doc)


def with_(**changes) -> str:
    """R1 with some fields changed (None removes a field)."""
    doc = {**R1, **changes}
    return line({k: v for k, v in doc.items() if v is not None})


SAME_CONTENT = {
    "seq ignored": with_(seq=7),
    "default source spelled out": with_(source="default"),
    "lines form": line({"id": "r1", "type": "receipt", "date": "2026-01-02", "location": "WH1",
                        "lines": [{"sku": "WIDGET-1", "qty": "10", "unit_cost": "5.00"}]}),
    "numbers as JSON numbers": with_(qty=10, unit_cost=5),
    "trailing zeros": with_(qty="10.000", unit_cost="5.0"),
    "JSON float": '{"id": "r1", "type": "receipt", "date": "2026-01-02", "location": "WH1", '
                  '"sku": "WIDGET-1", "qty": 10.0, "unit_cost": 5.00}',
    "exponent": with_(qty="1E+1", unit_cost="0.5E1"),
    "key order and spacing": '{ "unit_cost":"5.00" ,"qty":"10","sku":"WIDGET-1","location":"WH1",'
                             '"date":"2026-01-02","type":"receipt","id":"r1" }',
    "all at once": line({"seq": 99, "source": "default", "id": "r1", "type": "receipt",
                         "date": "2026-01-02", "location": "WH1",
                         "lines": [{"unit_cost": 5, "qty": 10.00, "sku": "WIDGET-1"}]}),
}


@pytest.mark.parametrize("form", list(SAME_CONTENT), ids=list(SAME_CONTENT))
def test_equal_meaning_has_equal_content_hash(form: str) -> None:
    original, resent = parse_event(line(R1)), parse_event(SAME_CONTENT[form])
    assert resent.error is None
    assert (resent.source, resent.ext_id) == ("default", "r1")
    assert resent.content_hash == original.content_hash
    assert resent.payload == original.payload


@pytest.mark.parametrize("changed", [with_(qty="11"), with_(unit_cost="5.01"), with_(lot="L1"),
                                     with_(date="2026-01-03"), with_(uom="EA")])
def test_other_meaning_has_other_content_hash(changed: str) -> None:
    assert parse_event(changed).content_hash != parse_event(line(R1)).content_hash


def test_resending_in_any_equal_form_is_a_duplicate(make_workspace) -> None:
    ws = make_workspace()
    assert outcome(post(ws, line(R1))) == {"r1": "posted"}
    for form, text in SAME_CONTENT.items():
        summary = post(ws, text)
        assert outcome(summary) == {"r1": "duplicate"}, form
    # all of them again, in one file
    summary = post(ws, *SAME_CONTENT.values())
    assert (summary.posted, summary.duplicates, summary.exceptions) == (0, len(SAME_CONTENT), 0)
    # posted once: 10 @ 5.00 = 50.00
    assert balances(ws) == {"1300": "50.00", "2100": "-50.00"}
    assert len(journal(ws, event="r1")) == 1
    assert queue(ws) == {}


def test_the_same_id_from_another_source_is_another_event(make_workspace) -> None:
    ws = make_workspace()
    summary = post(ws, line(R1), with_(source="erp"))
    assert (summary.posted, summary.duplicates) == (2, 0)
    # 2 x 10 @ 5.00 = 100.00
    assert balances(ws) == {"1300": "100.00", "2100": "-100.00"}


@pytest.mark.parametrize(("changed", "named", "not_named"), [
    (with_(qty="11"), "qty", None),
    (with_(unit_cost="5.01"), "unit_cost", None),
    # date comes before the line fields, so it is the one named
    (with_(date="2026-01-03", qty="11"), "date", "qty"),
    (with_(location="WH2", qty="11"), "location", "qty"),
    (with_(type="shipment", unit_cost=None), "type", "unit_cost"),
    (with_(lot="L1"), "lot", None),
    (line({**{k: v for k, v in R1.items() if k not in ("sku", "qty", "unit_cost")},
           "lines": [{"sku": "WIDGET-1", "qty": "10", "unit_cost": "5.00"},
                     {"sku": "WIDGET-1", "qty": "1", "unit_cost": "5.00"}]}),
     "lines", None),
])
def test_same_key_other_content_is_a_conflict_naming_the_first_difference(
        make_workspace, changed: str, named: str, not_named: str | None) -> None:
    ws = make_workspace()
    post(ws, line(R1))
    summary = post(ws, changed)
    assert outcome(summary) == {"r1": "CONFLICT"}
    message = summary.results[0].message
    assert named in message, message
    if not_named is not None:
        assert not_named not in message, f"names more than the first difference: {message}"
    # the posted event is untouched: still 10 @ 5.00
    assert balances(ws) == {"1300": "50.00", "2100": "-50.00"}
    entries = journal(ws, event="r1")
    assert [(x["account"], x["debit"], x["credit"]) for x in entries[0]["lines"]] == [
        ("1300", "50.00", "0.00"), ("2100", "0.00", "50.00")]
    assert queue(ws) == {"r1": "CONFLICT"}
    # re-sending the original is still a duplicate
    assert outcome(post(ws, line(R1))) == {"r1": "duplicate"}


def test_conflict_within_one_file(make_workspace) -> None:
    ws = make_workspace()
    summary = post(ws, line(R1), with_(qty="11"), line(R1))
    assert [(r.ext_id, r.status, r.code) for r in summary.results] == [
        ("r1", "posted", None), ("r1", "exception", "CONFLICT"), ("r1", "duplicate", None)]
    assert balances(ws) == {"1300": "50.00", "2100": "-50.00"}


SHORT = event("s1", "shipment", "2026-01-05", location="WH1", sku="WIDGET-1", qty="100")


def test_resending_a_queued_event_is_a_duplicate_and_it_stays_queued(make_workspace) -> None:
    ws = make_workspace()
    post(ws, line(R1))
    assert outcome(post(ws, SHORT)) == {"s1": "INSUFFICIENT_STOCK"}
    # the same content again, and in an equal form (number, trailing zeros, a seq)
    same_forms = [SHORT, json.dumps({**json.loads(SHORT), "qty": 100.0, "seq": 4})]
    for text in same_forms:
        assert outcome(post(ws, text)) == {"s1": "duplicate"}
    assert queue(ws) == {"s1": "INSUFFICIENT_STOCK"}
    # stock arrives; re-sending the queued content still does not post it: it waits for retry
    post(ws, event("r2", "receipt", "2026-01-03", location="WH1", sku="WIDGET-1", qty="90",
                   unit_cost="6.00"))
    assert outcome(post(ws, SHORT)) == {"s1": "duplicate"}
    assert queue(ws) == {"s1": "INSUFFICIENT_STOCK"}
    assert balances(ws) == {"1300": "590.00", "2100": "-590.00"}
    # retry posts it: 10 @ 5.00 + 90 @ 6.00 = 590.00, all shipped
    retried = exceptions_retry(ws)
    assert outcome(retried) == {"s1": "posted"}
    assert queue(ws) == {}
    assert balances(ws) == {"2100": "-590.00", "5000": "590.00"}
    # and now it is a posted event: the same content is a duplicate, other content a conflict
    assert outcome(post(ws, SHORT)) == {"s1": "duplicate"}
    assert outcome(post(ws, SHORT.replace('"100"', '"99"'))) == {"s1": "CONFLICT"}


def test_different_content_replaces_the_queued_event(make_workspace) -> None:
    ws = make_workspace()
    post(ws, line(R1))
    assert outcome(post(ws, SHORT)) == {"s1": "INSUFFICIENT_STOCK"}
    # another content under the same key replaces it (one queue entry, the new code)
    unknown = SHORT.replace("WIDGET-1", "NOPE-9")
    assert outcome(post(ws, unknown)) == {"s1": "UNKNOWN_SKU"}
    listed = exceptions_list(ws)
    assert [(e["id"], e["code"]) for e in listed] == [("s1", "UNKNOWN_SKU")]
    # what retry re-posts is the replacing content
    assert outcome(exceptions_retry(ws)) == {"s1": "UNKNOWN_SKU"}
    # a correct version posts and leaves the queue: 3 x 5.00 = 15.00
    fixed = SHORT.replace('"100"', '"3"')
    assert outcome(post(ws, fixed)) == {"s1": "posted"}
    assert queue(ws) == {}
    assert balances(ws) == {"1300": "35.00", "2100": "-50.00", "5000": "15.00"}
    # the key is now claimed by the posted content: the old queued contents conflict
    assert outcome(post(ws, SHORT)) == {"s1": "CONFLICT"}
    assert outcome(post(ws, unknown)) == {"s1": "CONFLICT"}
    assert balances(ws) == {"1300": "35.00", "2100": "-50.00", "5000": "15.00"}
