"""CLI transcripts (SPEC 8): the installed `stockledger` script, command in, JSON out."""

from __future__ import annotations

import copy

from tests.cli.transcript import Cli, balances
from tests.conftest import base_setup
from tests.unit.builders import event

R1 = event("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="10", unit_cost="5.00")
R2 = event("r2", "receipt", "2026-01-05", location="WH1", sku="WIDGET-1", qty="10", unit_cost="6.00")
S1 = event("s1", "shipment", "2026-01-10", location="WH1", sku="WIDGET-1", qty="15")
S2 = event("s2", "shipment", "2026-01-10", location="WH1", sku="WIDGET-1", qty="15")
FIFO_BASIC = [R1, R2, S1, S2]


def now(cli: Cli, report: str, *args: object, **options: object) -> object:
    """A report read in-process: for checks that are not the transcript under test."""
    from stockledger.service import reports, workspace

    function = getattr(reports, report, None) or getattr(workspace, report)
    ws = cli.workspace()
    try:
        return function(ws, *args, **options)
    finally:
        ws.close()


def tb_now(cli: Cli) -> dict[str, str]:
    return balances(now(cli, "trial_balance"))


def queue_now(cli: Cli) -> list[str]:
    return [e["id"] for e in now(cli, "exceptions_list")]


def test_init_post_and_every_report(cli: Cli) -> None:
    cli.write("setup.yaml", base_setup())
    init = cli.json("init", "--config", "setup.yaml")
    assert init["config_version"] == 1 and init["workspace"].endswith("ws.db")

    # r1 10 @ 5.00, r2 10 @ 6.00, s1 ships 15 FIFO = 50.00 + 30.00 = 80.00; s2 wants 15 of the 5 left
    posted = cli.post(FIFO_BASIC)
    assert {k: posted[k] for k in ("posted", "duplicates", "exceptions", "by_code")} == {
        "posted": 3, "duplicates": 0, "exceptions": 1, "by_code": {"INSUFFICIENT_STOCK": 1}}
    assert [(e["id"], e["code"]) for e in posted["exception_list"]] == [("s2", "INSUFFICIENT_STOCK")]

    tb = cli.json("report", "trial-balance")
    assert tb == {
        "as_of": "2026-01-10", "entity": "ACME",
        "accounts": [
            {"code": "1300", "name": "Inventory", "debit": "110.00", "credit": "80.00",
             "balance": "30.00"},
            {"code": "2100", "name": "Goods received not invoiced", "debit": "0.00",
             "credit": "110.00", "balance": "-110.00"},
            {"code": "5000", "name": "Cost of goods sold", "debit": "80.00", "credit": "0.00",
             "balance": "80.00"},
        ],
        "total_debit": "190.00", "total_credit": "190.00",
    }

    valuation = cli.json("report", "valuation")
    assert set(valuation) >= {"as_of", "lines", "total_value"}
    assert valuation["lines"] == [{"sku": "WIDGET-1", "location": "WH1", "qty": "5",
                                   "value": "30.00"}]
    assert valuation["total_value"] == "30.00"

    journal = cli.json("journal", "--event", "s1")
    assert len(journal) == 1
    entry = journal[0]
    assert set(entry) >= {"entry", "date", "kind", "event", "lines"}
    assert (entry["date"], entry["kind"], entry["event"]) == (
        "2026-01-10", "post", {"source": "default", "id": "s1"})
    assert entry["lines"] == [
        {"account": "5000", "debit": "80.00", "credit": "0.00", "sku": "WIDGET-1", "location": "WH1"},
        {"account": "1300", "debit": "0.00", "credit": "80.00", "sku": "WIDGET-1", "location": "WH1"},
    ]

    reconcile = cli.json("reconcile")
    assert set(reconcile) >= {"as_of", "status", "accounts"}
    assert reconcile["status"] == "balanced"
    # SPEC 8's keys, plus the drill-down's explained / unexplained (decision 0012)
    assert reconcile["accounts"] == [{"account": "1300", "subledger": "30.00", "gl": "30.00",
                                      "difference": "0.00", "explained": "0.00",
                                      "unexplained": "0.00"}]
    assert reconcile["items"] == []

    exceptions = cli.json("exceptions", "list")
    assert [set(e) for e in exceptions] == [{"source", "id", "code", "message"}]
    assert (exceptions[0]["source"], exceptions[0]["id"], exceptions[0]["code"]) == (
        "default", "s2", "INSUFFICIENT_STOCK")
    assert "5 on hand" in exceptions[0]["message"]


def test_reports_as_of_a_date(ws: Cli) -> None:
    ws.post(FIFO_BASIC)
    # 2026-01-06: both receipts in, nothing shipped: 20 for 110.00
    tb = ws.json("report", "trial-balance", "--as-of", "2026-01-06")
    assert tb["as_of"] == "2026-01-06"
    assert balances(tb) == {"1300": "110.00", "2100": "-110.00"}
    assert (tb["total_debit"], tb["total_credit"]) == ("110.00", "110.00")
    valuation = ws.json("report", "valuation", "--as-of", "2026-01-06")
    assert valuation["lines"] == [{"sku": "WIDGET-1", "location": "WH1", "qty": "20",
                                   "value": "110.00"}]
    # 2026-01-03: only r1, 10 for 50.00
    valuation = ws.json("report", "valuation", "--as-of", "2026-01-03")
    assert (valuation["lines"][0]["qty"], valuation["total_value"]) == ("10", "50.00")
    # before anything: empty, zero
    valuation = ws.json("report", "valuation", "--as-of", "2026-01-01")
    assert (valuation["lines"], valuation["total_value"]) == ([], "0.00")
    assert balances(ws.json("report", "trial-balance", "--as-of", "2026-01-01")) == {}
    reconcile = ws.json("reconcile", "--as-of", "2026-01-06")
    assert reconcile["status"] == "balanced"
    assert reconcile["accounts"][0]["gl"] == "110.00"
    # --entity names the only entity
    assert ws.json("report", "trial-balance", "--entity", "ACME")["entity"] == "ACME"


def test_fractional_quantities_and_uoms_in_json(ws: Cli) -> None:
    setup = base_setup(uoms=[{"code": "EA"}, {"code": "CS12", "base": "EA", "factor": "12"}])
    ws.write("setup2.yaml", setup)
    ws.ok("config", "apply", "setup2.yaml", "--reason", "cases of 12")
    # 2.5 EA @ 4.00 = 10.00; 1 CS12 @ 60.00 = 12 EA at 5.00 = 60.00; ship 0.25 FIFO = 1.00
    ws.post([
        event("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="2.50",
              unit_cost="4"),
        event("r2", "receipt", "2026-01-03", location="WH1", sku="widget 1", qty="1", uom="CS12",
              unit_cost="60.00"),
        event("s1", "shipment", "2026-01-04", location="WH1", sku="WIDGET-1", qty="0.25"),
    ])
    valuation = ws.json("report", "valuation")
    assert valuation["lines"] == [{"sku": "WIDGET-1", "location": "WH1", "qty": "14.25",
                                   "value": "69.00"}]
    assert ws.json("journal", "--event", "s1")[0]["lines"][0]["debit"] == "1.00"


def test_post_from_stdin(ws: Cli) -> None:
    summary = ws.json("post", "-", stdin="".join(line + "\n" for line in FIFO_BASIC))
    assert (summary["posted"], summary["exceptions"]) == (3, 1)
    assert tb_now(ws) == {
        "1300": "30.00", "2100": "-110.00", "5000": "80.00"}
    # the same again from stdin: all duplicates (s2 stays queued), exit 0
    again = ws.json("post", "-", stdin="\n".join(FIFO_BASIC))
    assert (again["posted"], again["duplicates"], again["exceptions"]) == (0, 4, 0)
    # plain text output prints the counts
    out = ws.ok("post", "-", stdin=R1 + "\n")
    assert "posted 0, duplicates 1, exceptions 0" in out


def test_post_text_output_lists_exceptions(ws: Cli) -> None:
    ws.write("events.jsonl", FIFO_BASIC)
    out = ws.ok("post", "events.jsonl")
    assert "posted 3, duplicates 0, exceptions 1" in out
    assert "INSUFFICIENT_STOCK" in out and "default/s2" in out


def test_dry_run_commits_nothing(ws: Cli) -> None:
    ws.post([R1])
    before_tb = now(ws, "trial_balance")
    before_valuation = now(ws, "valuation")
    ws.write("more.jsonl", [
        event("s1", "shipment", "2026-01-04", location="WH1", sku="WIDGET-1", qty="4"),
        event("x1", "shipment", "2026-01-04", location="WH1", sku="NOPE", qty="1"),
    ])
    dry = ws.json("post", "more.jsonl", "--dry-run")
    assert dry["dry_run"] is True
    assert (dry["posted"], dry["exceptions"], dry["by_code"]) == (1, 1, {"UNKNOWN_SKU": 1})
    # what would be posted: 4 x 5.00 = 20.00
    [entry] = dry["entries"]
    assert (entry["kind"], entry["event"], entry["date"]) == (
        "post", {"source": "default", "id": "s1"}, "2026-01-04")
    assert sorted((x["account"], x["debit"], x["credit"]) for x in entry["lines"]) == [
        ("1300", "0.00", "20.00"), ("5000", "20.00", "0.00")]
    text = ws.ok("post", "more.jsonl", "--dry-run")
    assert "nothing was committed" in text and "would post 1" in text
    # nothing changed: balances, stock, journal, exception queue
    assert now(ws, "trial_balance") == before_tb
    assert now(ws, "valuation") == before_valuation
    assert now(ws, "journal", event="s1") == []
    assert queue_now(ws) == []
    # posting for real afterwards works as if the dry run never happened
    real = ws.json("post", "more.jsonl")
    assert (real["posted"], real["duplicates"], real["exceptions"]) == (1, 0, 1)
    assert tb_now(ws) == {
        "1300": "30.00", "2100": "-50.00", "5000": "20.00"}


def test_exceptions_list_retry_discard(ws: Cli) -> None:
    ws.post([R1, S2, event("x1", "shipment", "2026-01-10", location="WH1", sku="NOPE-9", qty="1")])
    assert {(e["id"], e["code"]) for e in ws.json("exceptions", "list")} == {
        ("s2", "INSUFFICIENT_STOCK"), ("x1", "UNKNOWN_SKU")}
    # nothing fixed yet: retry posts nothing, both stay
    retry = ws.json("exceptions", "retry")
    assert (retry["posted"], retry["exceptions"]) == (0, 2)
    # stock arrives: s2 ships 10 @ 5.00 + 5 @ 6.00 = 80.00
    ws.post([R2])
    retry = ws.json("exceptions", "retry")
    assert (retry["posted"], retry["exceptions"], retry["by_code"]) == (1, 1, {"UNKNOWN_SKU": 1})
    assert now(ws, "journal", event="s2")[0]["lines"][0]["debit"] == "80.00"
    assert queue_now(ws) == ["x1"]
    # discard with a reason
    assert ws.json("exceptions", "discard", "x1", "--reason", "typo in the SKU") == {
        "discarded": {"source": "default", "id": "x1"}}
    assert queue_now(ws) == []
    assert "x1" in ws.fails("exceptions", "discard", "x1", "--reason", "again")
    assert ws.ok("exceptions", "list").strip() == "the exception queue is empty"
    assert tb_now(ws) == {
        "1300": "30.00", "2100": "-110.00", "5000": "80.00"}


def test_exceptions_retry_by_id(ws: Cli) -> None:
    ws.post([S1, S2])
    ws.post([R1, R2])
    retry = ws.json("exceptions", "retry", "s2")
    assert (retry["posted"], retry["exceptions"]) == (1, 0)
    assert queue_now(ws) == ["s1"]


def test_discard_needs_a_reason(ws: Cli) -> None:
    ws.post([S1])
    line = ws.fails("exceptions", "discard", "s1", "--reason", "   ")
    assert "--reason" in line
    assert queue_now(ws) == ["s1"]


def test_config_apply_and_history(ws: Cli) -> None:
    ws.post([R1])
    setup = base_setup()
    setup["locations"] = setup["locations"] + [{"code": "WH2", "entity": "ACME"}]
    setup["mapping"] = setup["mapping"] + [{"role": "inventory", "location": "WH2",
                                            "account": "1320"}]
    ws.write("v2.yaml", setup)
    applied = ws.json("config", "apply", "v2.yaml", "--reason", "second warehouse")
    assert applied["config_version"] == 2
    changes = {(c["section"], c.get("code"), c["change"]) for c in applied["changes"]}
    assert changes == {("locations", "WH2", "added"), ("mapping", None, "changed")}

    history = ws.json("config", "history")
    assert [(h["version"], h["reason"], h["actor"]) for h in history] == [
        (1, "initial setup", "tester"), (2, "second warehouse", "tester")]
    assert any(c.get("code") == "WH2" and c["change"] == "added" and c["new"]["entity"] == "ACME"
               for c in history[1]["changes"])
    text = ws.ok("config", "history")
    assert "second warehouse" in text

    # the new version is in force: a transfer to WH2 moves 4 x 5.00 = 20.00 to account 1320
    ws.post([event("t1", "transfer", "2026-01-03", from_="WH1", to="WH2", sku="WIDGET-1",
                   qty="4")])
    assert tb_now(ws) == {
        "1300": "30.00", "1320": "20.00", "2100": "-50.00"}
    assert now(ws, "reconcile")["status"] == "balanced"

    # applying the same file again changes nothing: an error, no new version
    assert "unchanged" in ws.fails("config", "apply", "v2.yaml", "--reason", "again")
    assert len(now(ws, "config_history")) == 2


def test_config_apply_refuses_to_rewrite_history(ws: Cli) -> None:
    ws.post([R1])
    setup = base_setup(products=[{"sku": "OTHER", "category": "FG", "uom": "EA"}])
    ws.write("v2.yaml", setup)
    result = ws.run("config", "apply", "v2.yaml", "--reason", "drop widget")
    assert result.code != 0 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert any("WIDGET-1 has stock movements and cannot be removed" in line for line in lines)
    assert len(now(ws, "config_history")) == 1


def test_period_close_reopen_list(ws: Cli) -> None:
    ws.post([R1])
    assert ws.ok("period", "close", "--entity", "ACME", "--through", "2026-01-31").strip() == \
        "ACME closed through 2026-01-31"
    periods = ws.json("period", "list")
    assert periods["entities"] == [{"entity": "ACME", "closed_through": "2026-01-31"}]
    assert [(h["entity"], h["action"], h["through"], h["actor"]) for h in periods["history"]] == [
        ("ACME", "close", "2026-01-31", "tester")]

    # in the closed period: PERIOD_CLOSED; after it: posted
    posted = ws.post([
        event("s1", "shipment", "2026-01-15", location="WH1", sku="WIDGET-1", qty="2"),
        event("s2", "shipment", "2026-02-01", location="WH1", sku="WIDGET-1", qty="3"),
    ])
    assert (posted["posted"], posted["by_code"]) == (1, {"PERIOD_CLOSED": 1})
    assert [(e["id"], e["code"]) for e in posted["exception_list"]] == [("s1", "PERIOD_CLOSED")]

    # closing an earlier date than the current close is refused
    assert "already closed" in ws.fails("period", "close", "--entity", "ACME", "--through",
                                        "2026-01-05")

    ws.ok("period", "reopen", "--entity", "ACME", "--through", "2026-01-10", "--reason",
          "late shipment found")
    periods = ws.json("period", "list")
    assert periods["entities"] == [{"entity": "ACME", "closed_through": "2026-01-10"}]
    assert [(h["action"], h["through"]) for h in periods["history"]] == [
        ("close", "2026-01-31"), ("reopen", "2026-01-10")]
    assert periods["history"][1]["reason"] == "late shipment found"

    # s1 (2026-01-15) can post now: 2 + 3 shipped at 5.00 = 25.00
    assert ws.json("exceptions", "retry")["posted"] == 1
    assert tb_now(ws) == {
        "1300": "25.00", "2100": "-50.00", "5000": "25.00"}
    text = ws.ok("period", "list")
    assert "2026-01-10" in text and "late shipment found" in text


def test_journal_kinds_post_recost_reversal(ws: Cli) -> None:
    # r1 10 @ 5.00 (01-05); s1 ships 5 (01-10): 25.00
    ws.post([event("r1", "receipt", "2026-01-05", location="WH1", sku="WIDGET-1", qty="10",
                   unit_cost="5.00"),
             event("s1", "shipment", "2026-01-10", location="WH1", sku="WIDGET-1", qty="5")])
    # r0 10 @ 4.00 backdated to 01-02: FIFO now ships 5 of r0 = 20.00 -> recost -5.00 on s1,
    # dated at s1's date, on s1's accounts
    summary = ws.post([event("r0", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1",
                             qty="10", unit_cost="4.00")])
    assert (summary["posted"], summary["recost_entries"]) == (1, 1)
    entries = ws.json("journal", "--event", "s1")
    assert [(e["kind"], e["date"]) for e in entries] == [("post", "2026-01-10"),
                                                          ("recost", "2026-01-10")]
    recost = {(x["account"], x["debit"], x["credit"]) for x in entries[1]["lines"]}
    assert recost == {("1300", "5.00", "0.00"), ("5000", "0.00", "5.00")}
    assert tb_now(ws) == {
        "1300": "70.00", "2100": "-90.00", "5000": "20.00"}

    # reversing r0: its mirror is dated at r0's date; s1 goes back to 25.00
    ws.post([event("rv1", "reversal", "2026-01-20", ref="r0")])
    mirror = ws.json("journal", "--event", "rv1")
    assert [(e["kind"], e["date"]) for e in mirror] == [("reversal", "2026-01-02")]
    assert {(x["account"], x["debit"], x["credit"]) for x in mirror[0]["lines"]} == {
        ("2100", "40.00", "0.00"), ("1300", "0.00", "40.00")}
    kinds = [e["kind"] for e in now(ws, "journal")]
    assert set(kinds) == {"post", "recost", "reversal"}
    assert tb_now(ws) == {
        "1300": "25.00", "2100": "-50.00", "5000": "25.00"}
    assert now(ws, "reconcile")["status"] == "balanced"


def test_negative_stock_under_allow_shows_negative_quantities(ws: Cli) -> None:
    setup = copy.deepcopy(base_setup(policies={"negative_stock": "allow"}))
    ws.write("allow.yaml", setup)
    ws.ok("config", "apply", "allow.yaml", "--reason", "allow negative stock")
    # 2 @ 5.00 on hand, ship 5: 10.00 + 3 at the last cost 5.00 = 25.00; 3 owed
    ws.post([event("r1", "receipt", "2026-01-02", location="WH1", sku="WIDGET-1", qty="2",
                   unit_cost="5.00"),
             event("s1", "shipment", "2026-01-03", location="WH1", sku="WIDGET-1", qty="5")])
    valuation = ws.json("report", "valuation")
    assert valuation["lines"] == [{"sku": "WIDGET-1", "location": "WH1", "qty": "-3",
                                   "value": "-15.00"}]
    # 10 @ 6.00 arrives: the 3 owed settle at 18.00, +3.00 recost on s1; 7 @ 6.00 = 42.00 left
    ws.post([event("r2", "receipt", "2026-01-04", location="WH1", sku="WIDGET-1", qty="10",
                   unit_cost="6.00")])
    assert now(ws, "valuation")["lines"][0] == {
        "sku": "WIDGET-1", "location": "WH1", "qty": "7", "value": "42.00"}
    recosts = [e for e in ws.json("journal", "--event", "s1") if e["kind"] == "recost"]
    assert [e["date"] for e in recosts] == ["2026-01-04"]
    assert {(x["account"], x["debit"], x["credit"]) for x in recosts[0]["lines"]} == {
        ("5000", "3.00", "0.00"), ("1300", "0.00", "3.00")}
    assert tb_now(ws) == {
        "1300": "42.00", "2100": "-70.00", "5000": "28.00"}


def _shipped_history(ws: Cli) -> None:
    # r1 10 @ 5.00 (01-05), s1 ships 5 (01-10): 25.00
    ws.post([event("r1", "receipt", "2026-01-05", location="WH1", sku="WIDGET-1", qty="10",
                   unit_cost="5.00"),
             event("s1", "shipment", "2026-01-10", location="WH1", sku="WIDGET-1", qty="5")])


def _shown(dry: dict) -> dict:
    return {(e["kind"], e["event"]["id"], e["date"]):
            sorted((x["account"], x["debit"], x["credit"]) for x in e["lines"])
            for e in dry["entries"]}


def test_dry_run_shows_the_recost_a_backdated_event_would_post(ws: Cli) -> None:
    """SPEC 8: --dry-run shows what would be posted; a backdated receipt also posts a recost
    entry on the later shipment (SPEC 6)."""
    _shipped_history(ws)
    before = tb_now(ws)
    # r0 10 @ 4.00 dated 01-02: its own entry (40.00) and a -5.00 recost on s1 (dated 01-10)
    ws.write("backdated.jsonl", [event("r0", "receipt", "2026-01-02", location="WH1",
                                       sku="WIDGET-1", qty="10", unit_cost="4.00")])
    dry = ws.json("post", "backdated.jsonl", "--dry-run")
    assert (dry["posted"], dry["recost_entries"]) == (1, 1)
    assert _shown(dry) == {
        ("post", "r0", "2026-01-02"): [("1300", "40.00", "0.00"), ("2100", "0.00", "40.00")],
        ("recost", "s1", "2026-01-10"): [("1300", "5.00", "0.00"), ("5000", "0.00", "5.00")],
    }
    assert tb_now(ws) == before


def test_dry_run_shows_the_mirror_entry_a_reversal_would_post(ws: Cli) -> None:
    """SPEC 8 and 4: a reversal posts the exact lines of the original, debit and credit
    swapped, dated at the original's date; --dry-run must show that entry."""
    _shipped_history(ws)
    before = tb_now(ws)
    ws.write("reversal.jsonl", [event("rv1", "reversal", "2026-01-12", ref="s1")])
    dry = ws.json("post", "reversal.jsonl", "--dry-run")
    assert dry["posted"] == 1
    assert _shown(dry) == {
        ("reversal", "rv1", "2026-01-10"): [("1300", "25.00", "0.00"), ("5000", "0.00", "25.00")],
    }
    assert tb_now(ws) == before
    assert now(ws, "journal", event="rv1") == []
