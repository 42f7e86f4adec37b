"""Exports: beancount (bean-check accepts it; every balance equals our trial
balance to the cent), the journal CSV and the audit package."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stockledger.service import exports, reports
from stockledger.service.audit import verify
from stockledger.service.workspace import UserError
from tests.conftest import base_setup
from tests.exports.dataset import build

D = Decimal
BEAN_CHECK = str(Path(sys.executable).with_name("bean-check"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def bean_balances(path: Path) -> dict[str, Decimal]:
    """Loads the file with beancount's loader; the sum of the postings per account."""
    from beancount import loader
    from beancount.core import data

    entries, errors, _ = loader.load_file(str(path))
    assert errors == [], errors
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                assert posting.units.currency == "USD"
                sums[posting.account] += posting.units.number
    return dict(sums)


def trial_balance(ws: Any, as_of: int | None = None) -> dict[str, Decimal]:
    return {a["code"]: D(a["balance"])
            for a in reports.trial_balance(ws, as_of)["accounts"]}


# -- beancount ------------------------------------------------------------------------------

@pytest.mark.parametrize("as_of", [None, "2026-01-31", "2026-02-22"])
def test_beancount_checks_and_matches_the_trial_balance(ledger: Any, tmp_path: Path,
                                                        as_of: str | None) -> None:
    out = tmp_path / "ledger.beancount"
    day = reports.parse_date(as_of)
    result = exports.beancount(ledger, str(out), as_of=day)
    check = subprocess.run([BEAN_CHECK, str(out)], check=False, capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    names = exports.beancount_accounts(ledger.current_setup())
    ours = {names[code]: balance for code, balance in trial_balance(ledger, day).items()}
    assert bean_balances(out) == ours
    entries = reports.journal(ledger, as_of=day)
    assert result["entries"] == len(entries)
    assert result["lines"] == sum(len(e["lines"]) for e in entries)


def test_beancount_transactions_carry_their_event(ledger: Any, tmp_path: Path) -> None:
    from beancount import loader
    from beancount.core import data

    out = tmp_path / "ledger.beancount"
    exports.beancount(ledger, str(out))
    entries, errors, _ = loader.load_file(str(out))
    assert not errors
    txns = {t.meta["event_ext_id"] + "/" + t.meta["entry_kind"]: t for t in entries
            if isinstance(t, data.Transaction)}
    s2 = txns["s2/post"]
    assert (str(s2.date), s2.meta["event_source"], s2.meta["event_type"], s2.meta["entity"]) == (
        "2026-02-10", "default", "shipment", "ACME")
    assert {(p.account, p.units.number) for p in s2.postings} == {
        ("Expenses:5000-Cost-Of-Goods-Sold", D("65.00")), ("Assets:1300-Inventory", D("-65.00"))}
    assert all(p.meta["sku"] == "WIDGET-1" and p.meta["location"] == "WH1" for p in s2.postings)
    # the reversal's mirror is dated at the original's date and says what it reverses
    mirror = txns["rev1/reversal"]
    assert str(mirror.date) == "2026-02-22" and mirror.meta["memo"] == "reversal of default/a3"
    manual = txns["m1/manual"]
    assert manual.meta["event_type"] == "manual_journal"
    assert manual.meta["memo"] == "freight accrual"
    assert int(manual.meta["entry_id"]) == reports.journal(ledger, event="m1", source="manual")[0][
        "entry"]
    opens = {e.account: e for e in entries if isinstance(e, data.Open)}
    assert str(opens["Assets:1300-Inventory"].date) == "2026-01-02"  # its first line
    assert opens["Assets:1300-Inventory"].currencies == ["USD"]


def test_beancount_names_are_valid_whatever_the_chart_says(make_workspace: Any,
                                                          tmp_path: Path) -> None:
    setup = base_setup()
    for account in setup["accounts"]:
        if account["code"] == "1300":
            account["name"] = 'Stock "A" \\ Ünïcode – déjà vu (main)'
        if account["code"] == "5000":
            account["name"] = "cost of goods sold"
    ws = build(make_workspace(setup))
    names = exports.beancount_accounts(ws.current_setup())
    assert names["1300"] == "Assets:1300-Stock-A-Unicode-Deja-Vu-Main"
    assert names["5000"] == "Expenses:5000-Cost-Of-Goods-Sold"
    assert names["2100"].startswith("Liabilities:") and names["3000"].startswith("Equity:")
    assert names["4000"].startswith("Income:")
    out = tmp_path / "ledger.beancount"
    exports.beancount(ws, str(out))
    check = subprocess.run([BEAN_CHECK, str(out)], check=False, capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert bean_balances(out)[names["1300"]] == D("91.00")


def test_beancount_catches_a_cent(ledger: Any, tmp_path: Path) -> None:
    """The balance assertions are exact: a ledger one cent off fails bean-check."""
    out = tmp_path / "ledger.beancount"
    exports.beancount(ledger, str(out))
    text = out.read_text()
    assert "balance Assets:1300-Inventory 91.00 ~ 0.00 USD" in text
    out.write_text(text.replace("balance Assets:1300-Inventory 91.00", "balance "
                                "Assets:1300-Inventory 91.01"))
    check = subprocess.run([BEAN_CHECK, str(out)], check=False, capture_output=True, text=True,
                           timeout=120)
    assert check.returncode != 0


# -- journal CSV ----------------------------------------------------------------------------

def test_journal_csv(ledger: Any, tmp_path: Path) -> None:
    out = tmp_path / "journal.csv"
    result = exports.journal_csv(ledger, str(out))
    rows = read_csv(out)
    assert list(rows[0]) == [name for name, _ in exports.JOURNAL_COLUMNS]
    journal = reports.journal(ledger)
    assert result["rows"] == len(rows) == sum(len(e["lines"]) for e in journal)
    # the trial balance's debits: 1200 270 + 1300 264 + 5000 145 + 5200 14 + 5210 14 + 5400 10
    assert sum(D(r["debit"]) for r in rows) == sum(D(r["credit"]) for r in rows) == D("717.00")
    by_event: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_event[row["event_ext_id"]].append(row)
    s1 = reports.journal(ledger, event="s1")[0]["entry"]
    assert sorted(by_event["s1"], key=lambda r: r["account_code"]) == [
        {"entry_id": str(s1), "date": "2026-01-10", "kind": "post", "event_source": "default",
         "event_ext_id": "s1", "event_type": "shipment", "entity": "ACME", "account_code": "1300",
         "account_name": "Inventory", "debit": "0.00", "credit": "80.00",
         "currency": "USD", "sku": "WIDGET-1", "location": "WH1", "memo": ""},
        {"entry_id": str(s1), "date": "2026-01-10", "kind": "post", "event_source": "default",
         "event_ext_id": "s1", "event_type": "shipment", "entity": "ACME", "account_code": "5000",
         "account_name": "Cost of goods sold", "debit": "80.00", "credit": "0.00",
         "currency": "USD", "sku": "WIDGET-1", "location": "WH1", "memo": ""},
    ]
    assert {(r["account_code"], r["debit"], r["credit"], r["memo"]) for r in by_event["a1"]} == {
        ("5210", "7.00", "0.00", "damage"), ("1300", "0.00", "7.00", "damage")}
    assert {(r["kind"], r["date"], r["memo"]) for r in by_event["rev1"]} == {
        ("reversal", "2026-02-22", "reversal of default/a3")}
    assert sorted((r["event_source"], r["kind"], r["account_code"], r["debit"], r["sku"],
                   r["memo"]) for r in by_event["m1"]) == [
        ("manual", "manual", "2000", "0.00", "", "freight accrual"),
        ("manual", "manual", "5400", "10.00", "", "freight accrual")]
    # AR and revenue lines of an invoice carry its SKU too
    assert {r["account_code"] for r in by_event["i2"]} == {"1200", "4000"}


def test_journal_csv_period_and_as_of(ledger: Any, tmp_path: Path) -> None:
    out = tmp_path / "j.csv"
    exports.journal_csv(ledger, str(out), period=reports.parse_period("2026-02-10..2026-02-12"))
    rows = read_csv(out)
    # s2 (2 lines), i2 (2), a1 (2)
    assert sorted({r["event_ext_id"] for r in rows}) == ["a1", "i2", "s2"] and len(rows) == 6
    exports.journal_csv(ledger, str(out), as_of=reports.parse_date("2026-01-10"))
    assert [r["event_ext_id"] for r in read_csv(out)] == ["r1", "r1", "r2", "r2", "s1", "s1"]
    with pytest.raises(UserError, match="not both"):
        exports.journal_csv(ledger, str(out), period=reports.parse_period("2026-02"),
                            as_of=reports.parse_date("2026-01-10"))


def test_recost_memo_names_its_cause(make_workspace: Any, tmp_path: Path) -> None:
    ws = make_workspace()
    w = {"location": "WH1", "sku": "WIDGET-1"}
    events = [{"id": "r1", "type": "receipt", "date": "2026-01-02", **w, "qty": "5",
               "unit_cost": "4.00"},
              {"id": "s1", "type": "shipment", "date": "2026-01-10", **w, "qty": "5"},
              {"id": "r0", "type": "receipt", "date": "2026-01-01", **w, "qty": "5",
               "unit_cost": "3.00"}]
    from stockledger.service.ingest import parse_lines, post_events

    post_events(ws, parse_lines([json.dumps(e) for e in events]))
    out = tmp_path / "j.csv"
    exports.journal_csv(ws, str(out))
    recost = [r for r in read_csv(out) if r["kind"] == "recost"]
    # s1 now takes r0's 5 @ 3.00 = 15.00 instead of 20.00: 5.00 back from COGS
    assert {(r["event_ext_id"], r["account_code"], r["debit"], r["credit"], r["memo"])
            for r in recost} == {("s1", "1300", "5.00", "0.00", "caused by receipt default/r0"),
                                 ("s1", "5000", "0.00", "5.00", "caused by receipt default/r0")}


# -- audit package ---------------------------------------------------------------------------

def test_audit_package(ledger: Any, tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    result = exports.audit(ledger, reports.parse_period("2026-02"), str(folder))
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {name: read_csv(folder / name)
             for name in ("events.csv", "entries.csv", "lines.csv", "movements.csv")}
    for name, rows in files.items():
        info = manifest["files"][name]
        assert info["rows"] == len(rows) == result["files"][name]
        assert [c["name"] for c in info["columns"]] == list(rows[0])
        assert info["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    events, entries, lines, moves = (files[n] for n in ("events.csv", "entries.csv",
                                                        "lines.csv", "movements.csv"))
    # only rows dated in February
    assert all("2026-02-01" <= r["date"] <= "2026-02-28" for r in entries + lines + moves)
    # r3 s2 i3 i2 a1 c2 a2 a3 rev1 m1 post an entry each (the mirror of a3 is rev1's); c3
    # counted no variance: a movement and no entry
    assert len(entries) == 10
    assert len(lines) == 2 * 10  # two lines each
    # events: those with February rows, plus s1 (i3 refers to it) and a3 (rev1 reverses it)
    ext = {r["ext_id"] for r in events}
    assert ext == {"r3", "s2", "i3", "i2", "a1", "c2", "c3", "a2", "a3", "rev1", "m1", "s1"}
    # every link resolves
    event_ids = {r["event_id"] for r in events}
    entry_ids = {r["entry_id"] for r in entries}
    assert {r["entry_id"] for r in lines} <= entry_ids
    assert {r[k] for r in entries for k in ("event_id", "cause_event_id",
                                            "producer_event_id")} <= event_ids
    assert {r[k] for r in lines + moves for k in ("event_id", "producer_event_id")} <= event_ids
    assert {r["ref_event_id"] for r in events if r["ref_event_id"]} <= event_ids
    move_keys = {(r["event_id"], r["op_no"]) for r in moves}
    stock_lines = [r for r in lines if r["account_code"] == "1300"]
    assert stock_lines and {(r["event_id"], r["op_no"]) for r in stock_lines} <= move_keys
    a3 = next(r for r in events if r["ext_id"] == "a3")
    rev1 = next(r for r in events if r["ext_id"] == "rev1")
    assert a3["reversed_by_event_id"] == rev1["event_id"] and a3["reversed_at"]
    c2 = next(r for r in moves if r["event_id"] == next(
        e["event_id"] for e in events if e["ext_id"] == "c2"))
    assert (c2["op"], c2["qty"], c2["value"], c2["param_qty"]) == ("count", "-2", "-14.00", "12")
    # control totals: the lines' debits and credits
    debit = sum(D(r["debit"]) for r in lines)
    assert manifest["control_totals"] == {"USD": {"debit": f"{debit:.2f}",
                                                  "credit": f"{debit:.2f}"}}
    assert debit == sum(D(r["amount"]) for r in lines if D(r["amount"]) > 0)
    # the hash chain: the period's last entry and the head (m1 is the last entry posted)
    last = max(entries, key=lambda r: int(r["chain_seq"]))
    assert manifest["last_entry"] == {"entry_id": int(last["entry_id"]),
                                      "chain_seq": int(last["chain_seq"]),
                                      "date": last["date"], "hash": last["hash"]}
    assert manifest["chain_head"]["chain_seq"] == verify(ledger)["entries_checked"]
    assert manifest["chain_head"]["hash"] == last["hash"]
    readme = (folder / "README.txt").read_text()
    assert "lines.csv (event_id, op_no) -> movements.csv (event_id, op_no)" in readme
    assert last["hash"] in readme


def test_audit_package_of_an_empty_period(ledger: Any, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    result = exports.audit(ledger, reports.parse_period("2025"), str(folder))
    assert result["files"] == {"entries.csv": 0, "lines.csv": 0, "movements.csv": 0,
                               "events.csv": 0}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["last_entry"] is None and manifest["control_totals"] == {}
    assert read_csv(folder / "events.csv") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        exports.audit(ledger, reports.parse_period("2025"), str(tmp_path / "file"))


def test_every_documented_column_is_in_docs() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "exports.md").read_text()
    for name, columns in exports.column_docs().items():
        for column, _ in columns:
            assert f"`{column}`" in docs, f"{name}: column {column} is not documented"
