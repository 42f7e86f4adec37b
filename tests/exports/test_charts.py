"""`report chart`: the series behind each chart checked by hand, and the files
written as valid PNG images (no pixel comparison)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from stockledger.service import charts, reports
from stockledger.service.workspace import UserError

FEBRUARY = reports.parse_period("2026-02")
SIZE_MIN_BYTES = 10_000


def is_png(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == charts.PNG_SIGNATURE


def test_margin_by_month(ledger: Any) -> None:
    series = charts.margin_series(ledger)
    # January: revenue i1 100.00, COGS s1 80.00; February: i3 50.00 + i2 120.00 = 170.00,
    # COGS s2 65.00
    assert series.points == ((202601, 10000, 8000), (202602, 17000, 6500))
    # margins 20.00 of 100.00 = 20.0%, 105.00 of 170.00 = 61.76% -> 61.8%
    assert charts.margin_pct_text(10000, 8000) == "20.0"
    assert charts.margin_pct_text(17000, 6500) == "61.8"
    assert charts.margin_pct_text(0, 6500) is None
    assert charts.margin_series(ledger, FEBRUARY).points == ((202602, 17000, 6500),)


def test_accuracy_by_month(ledger: Any) -> None:
    # January c1 exact (1 of 1); February c2 off by 2, c3 exact (1 of 2)
    assert charts.accuracy_series(ledger).points == ((202601, 1, 1), (202602, 2, 1))


def test_valuation_over_time(ledger: Any) -> None:
    series = charts.valuation_series(ledger, FEBRUARY)
    # the balance the day before, then each day it changed (02-22: a3 and its mirror, net 0)
    assert series.points == ((20260131, 3000), (20260203, 17000), (20260210, 10500),
                             (20260212, 9800), (20260215, 8400), (20260221, 9100),
                             (20260222, 9100), (20260228, 9100))
    everything = charts.valuation_series(ledger)
    assert everything.points[0] == (20260102, 5000) and everything.points[-1] == (20260222, 9100)


@pytest.mark.parametrize("kind", charts.CHARTS)
def test_each_chart_is_a_png(ledger: Any, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "sub" / f"{kind}.png"
    result = charts.chart(ledger, kind, str(out))
    assert result["chart"] == kind and result["bytes"] == out.stat().st_size
    assert is_png(out) and out.stat().st_size > SIZE_MIN_BYTES
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (1100, 605)  # 10 x 5.5 inches at 110 dpi
    charts.chart(ledger, kind, str(out), FEBRUARY, "ACME")  # overwrites
    assert is_png(out)


def test_an_empty_period_still_draws(ledger: Any, tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    charts.chart(ledger, "accuracy", str(out), reports.parse_period("2027-01"))
    assert is_png(out) and out.stat().st_size > SIZE_MIN_BYTES


def test_chart_mistakes(ledger: Any, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown chart"):
        charts.chart(ledger, "pie", str(tmp_path / "x.png"))
    with pytest.raises(UserError, match=r"\.png"):
        charts.chart(ledger, "margin", str(tmp_path / "x.jpg"))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(UserError, match="directory"):
        charts.chart(ledger, "margin", str(tmp_path / "dir.png"))


def test_money_text_has_thousands_separators() -> None:
    assert charts.money_text(123456789, 2) == "1,234,567.89"
    assert charts.money_text(-5, 2) == "-0.05"
    assert charts.money_text(1234, 0) == "1,234"
