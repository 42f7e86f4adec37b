"""The close reports on the command line: JSON as the service returns it, the
Rich tables render, and a user's mistake is one `error:` line with exit 1."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from stockledger.cli.app import app, main
from tests.close.test_close_reports import MONTH, setup
from tests.test_time_and_corrections import post

runner = CliRunner()


@pytest.fixture
def url(make_workspace: Any) -> str:
    ws = make_workspace(setup())
    assert post(ws, *MONTH).posted == len(MONTH)
    return ws.url


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_grni_and_valuation_by_as_json(url: str) -> None:
    grni = json.loads(run("report", "grni", "--db", url, "--as-of", "2026-03-31", "--json").stdout)
    # 30.00 (r1) + 16.00 (r3) + 48.00 (r2) + 10.00 (r4) open, equal to the GRNI credit balance
    assert [(i["receipt"]["id"], i["open"]) for i in grni["items"]] == [
        ("r1", "30.00"), ("r3", "16.00"), ("r2", "48.00"), ("r4", "10.00")]
    assert (grni["subledger"], grni["gl"], grni["status"]) == ("104.00", "104.00", "balanced")
    by_location = json.loads(run("report", "valuation", "--by", "location", "--db", url,
                                 "--json").stdout)
    assert by_location["lines"] == [{"location": "WH1", "value": "96.00"},
                                    {"location": "WH2", "value": "12.00"}]
    # without --by the report is exactly what it was
    plain = json.loads(run("report", "valuation", "--db", url, "--json").stdout)
    assert list(plain) == ["as_of", "entity", "lines", "total_value"]
    assert list(plain["lines"][0]) == ["sku", "location", "qty", "value"]


def test_every_close_report_renders_as_a_table(url: str) -> None:
    for args in (["grni"], ["gsni"], ["counts", "--period", "2026-Q1", "--tolerance", "10"],
                 ["valuation-review", "--period", "2026-03"],
                 ["stock-ledger", "--sku", "widget 1", "--location", "WH1"],
                 ["aging", "--as-of", "2026-03-08"], ["balance-sheet"],
                 ["income-statement", "--period", "2026-03"], ["valuation", "--by", "sku"]):
        output = run("report", *args, "--db", url).stdout
        assert output.strip(), args
    assert "balanced" in run("report", "aging", "--db", url).stdout
    counts = json.loads(run("report", "counts", "--period", "2026-03", "--db", url,
                            "--json").stdout)
    assert counts["total"]["accuracy_pct"] == "33.33"  # c1, c2, c4: only c2 exact
    sheet = json.loads(run("report", "balance-sheet", "--as-of", "2026-03-31", "--db", url,
                           "--json").stdout)
    assert sheet["status"] == "balanced"


@pytest.mark.parametrize("args, message", [
    (["report", "stock-ledger", "--sku", "NOPE"], "error: unknown SKU 'NOPE'"),
    (["report", "valuation-review", "--period", "March"], "error: --period must be"),
    (["report", "counts", "--tolerance", "lots"], "error: --tolerance must be a percentage"),
    (["report", "grni", "--entity", "OTHER"], "error: unknown entity 'OTHER'"),
    (["report", "valuation", "--by", "colour"], "error: --by must be one of"),
])
def test_a_mistake_is_one_error_line(url: str, args: list[str], message: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["stockledger", *args, "--db", url])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
