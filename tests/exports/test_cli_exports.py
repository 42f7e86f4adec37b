"""CLI transcripts of `report kpis`, `report chart` and `export ...` (the
installed script, SQLite): command in, output out; mistakes are one error line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli.transcript import Cli
from tests.conftest import base_setup
from tests.exports.dataset import EVENTS, MANUAL


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A workspace holding the dataset, made once for this module's transcripts."""
    cli = Cli(tmp_path_factory.mktemp("books"))
    cli.init(base_setup())
    assert cli.post(EVENTS)["posted"] == len(EVENTS)
    cli.write("m1.yaml", MANUAL)
    cli.ok("journal", "add", "m1.yaml")
    return cli


def test_kpis(books: Cli) -> None:
    data = books.json("report", "kpis", "--period", "2026-02")
    # figures worked out in test_kpis.test_february
    assert (data["manual_entries"], data["cogs"], data["turnover"], data["days_of_inventory"],
            data["write_offs"], data["carrying_cost"]) == (1, "65.00", "0.61", "45.9", "21.00",
                                                           "2.05")
    assert data["counts"]["accuracy_pct"] == "50.00"
    data = books.json("report", "kpis", "--period", "2026-02", "--carrying-rate", "30%",
                      "--count-tolerance", "15")
    assert (data["carrying_cost"], data["counts"]["accuracy_pct"]) == ("2.45", "100.00")
    table = books.ok("report", "kpis", "--period", "2026-02", "--entity", "ACME")
    for text in ("inventory turnover", "0.61", "days of inventory", "45.9", "write-offs",
                 "21.00", "carrying cost", "2.05", "50.00%", "1 of 2 count lines"):
        assert text in table, text


def test_charts(books: Cli) -> None:
    for kind in ("valuation", "margin", "accuracy"):
        said = books.ok("report", "chart", kind, "--out", f"charts/{kind}.png", "--period",
                        "2026-Q1")
        assert said.startswith(f"wrote charts/{kind}.png")
        data = (books.dir / "charts" / f"{kind}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_exports(books: Cli) -> None:
    said = books.ok("export", "beancount", "--out", "books.beancount")
    # 15 events and m1, less the counts c1 and c3 that found no variance (no entry)
    assert said == "wrote books.beancount: 14 transactions, 28 postings, 9 accounts\n"
    assert "open Assets:1300-Inventory USD" in (books.dir / "books.beancount").read_text()

    result = books.json("export", "journal-csv", "--out", "feb.csv", "--period", "2026-02")
    with open(books.dir / "feb.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert result["rows"] == len(rows) == 20  # test_audit_package: 10 entries x 2 lines

    result = books.json("export", "audit", "--period", "2026-02", "--out", "audit")
    assert result["files"]["lines.csv"] == 20
    manifest = json.loads((books.dir / "audit" / "manifest.json").read_text())
    assert manifest["last_entry"]["hash"] == manifest["chain_head"]["hash"]


@pytest.mark.parametrize("args, message", [
    (("report", "kpis"), "--period is required"),
    (("report", "kpis", "--period", "March"), "--period must be"),
    (("report", "kpis", "--period", "2026-02", "--carrying-rate", "lots"), "--carrying-rate"),
    (("report", "kpis", "--period", "2026-02", "--count-tolerance", "200"), "--count-tolerance"),
    (("report", "kpis", "--period", "2026-02", "--entity", "NOPE"), "unknown entity"),
    (("report", "chart", "pie", "--out", "x.png"), "unknown chart 'pie'"),
    (("report", "chart", "margin", "--out", "x.svg"), ".png"),
    (("export", "journal-csv", "--out", "j.csv", "--period", "2026-02", "--as-of",
      "2026-02-01"), "not both"),
    (("export", "audit", "--out", "a"), "--period is required"),
    (("export", "beancount", "--out", "b.beancount", "--as-of", "yesterday"), "--as-of"),
])
def test_mistakes_are_one_line(books: Cli, args: tuple[str, ...], message: str) -> None:
    assert message in books.fails(*args)


def test_no_workspace(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    assert "no stockledger workspace" in cli.fails("export", "beancount", "--out", "x.beancount")
