"""Charts (`stockledger report chart valuation|margin|accuracy --out FILE.png`).

Each chart is two steps: a series read from the ledger with SQL aggregates
(exact integers, the same definitions as the KPIs in ``service.kpis``), then a
drawing with matplotlib's Agg renderer (no display needed, no global pyplot
state). Amounts become floats only at the very end, as positions on an axis;
the figures printed on the chart are formatted from the exact integers.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from stockledger.domain.events import from_ymd, ymd, ymd_text
from stockledger.domain.money import div_half_up
from stockledger.domain.setup import Role
from stockledger.service import kpis, reports
from stockledger.service.workspace import UserError, Workspace

CHARTS = ("valuation", "margin", "accuracy")
FIGURE_SIZE_INCHES = (10, 5.5)
FIGURE_DPI = 110
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Series:
    """What a chart shows: its points as exact integers, and how to label them."""

    kind: str
    entity: str | None
    currency: str
    exp: int
    period: tuple[int, int] | None
    points: tuple[tuple[Any, ...], ...]


# -- series ------------------------------------------------------------------------------

def valuation_series(ws: Workspace, period: tuple[int, int] | None = None,
                     entity_code: str | None = None) -> Series:
    """Inventory value (GL balance of the inventory accounts) at the end of every
    day on which it changed: [(yyyymmdd, balance_minor)], starting with the
    balance on the day before the period."""
    ws.require()
    start, end = period if period else (None, None)
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        accounts = kpis.inventory_account_ids(conn, setup, entity)
        points: list[tuple[int, int]] = []
        balance = 0
        if start is not None:
            before = ymd(from_ymd(start) - dt.timedelta(days=1))
            balance = kpis.gl_net(conn, accounts, entity, None, before)
            points.append((before, balance))
        for date, net in kpis.gl_net_by_day(conn, accounts, entity, start, end):
            balance += net
            points.append((date, balance))
        if end is not None and (not points or points[-1][0] < end):
            points.append((end, balance))
    return Series("valuation", entity.code if entity else None, kpis.currency_of(setup, entity),
                  reports._exp(setup, entity), period, tuple(points))


def margin_series(ws: Workspace, period: tuple[int, int] | None = None,
                  entity_code: str | None = None) -> Series:
    """Per month: (yyyymm, revenue_minor, cogs_minor). Revenue is the credit
    balance of the revenue accounts, COGS the debit balance of the COGS
    accounts, both as posted in the month (credit notes and recosts included)."""
    ws.require()
    start, end = period if period else (None, None)
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        revenue = kpis.gl_net_by_month(conn, reports.role_accounts(setup, Role.REVENUE),
                                       entity, start, end)
        cogs = kpis.gl_net_by_month(conn, reports.role_accounts(setup, Role.COGS),
                                    entity, start, end)
    months = sorted(set(revenue) | set(cogs))
    points = tuple((month, -revenue.get(month, 0), cogs.get(month, 0)) for month in months)
    return Series("margin", entity.code if entity else None, kpis.currency_of(setup, entity),
                  reports._exp(setup, entity), period, points)


def accuracy_series(ws: Workspace, period: tuple[int, int] | None = None,
                    entity_code: str | None = None,
                    tolerance_pct: Decimal = Decimal(0)) -> Series:
    """Per month: (yyyymm, count lines, accurate lines), as in the KPIs and
    `report counts`."""
    ws.require()
    start, end = period if period else (None, None)
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
    months = kpis.count_accuracy(ws, entity_code, start, end, tolerance_pct)
    points = tuple((month, *months[month]) for month in sorted(months))
    return Series("accuracy", entity.code if entity else None, kpis.currency_of(setup, entity),
                  reports._exp(setup, entity), period, points)


SERIES = {"valuation": valuation_series, "margin": margin_series, "accuracy": accuracy_series}


def margin_pct_text(revenue_minor: int, cogs_minor: int) -> str | None:
    """Gross margin as a percentage of revenue, 1 decimal; None without revenue."""
    if revenue_minor == 0:
        return None
    return kpis.ratio_text(100 * (revenue_minor - cogs_minor), revenue_minor, 1)


# -- drawing -----------------------------------------------------------------------------

def chart(ws: Workspace, kind: str, out: str, period: tuple[int, int] | None = None,
          entity_code: str | None = None,
          tolerance_pct: Decimal = Decimal(0)) -> dict[str, Any]:
    """Write one chart as a PNG file; returns what was drawn."""
    if kind not in CHARTS:
        raise UserError(f"unknown chart {kind!r} (choose one of: {', '.join(CHARTS)})")
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UserError(f"--out must name a .png file, got {out!r}")
    if path.is_dir():
        raise UserError(f"--out {out!r} is a directory; give a file name ending in .png")
    series = (accuracy_series(ws, period, entity_code, tolerance_pct) if kind == "accuracy"
              else SERIES[kind](ws, period, entity_code))
    figure = _draw(series)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        figure.savefig(tmp, format="png", dpi=FIGURE_DPI)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return {"chart": kind, "out": str(path), "points": len(series.points),
            "bytes": path.stat().st_size}


def _title(series: Series, what: str) -> str:
    scope = f" - {series.entity}" if series.entity else ""
    if series.period:
        first, last = series.period
    elif series.points:
        first, last = series.points[0][0], series.points[-1][0]
    else:
        return f"{what}{scope}, no data"
    show = ymd_text if first >= 10**7 else _month  # yyyymmdd or yyyymm
    span = show(first) if first == last else f"{show(first)} to {show(last)}"
    return f"{what}{scope}, {span}"


def _month(yyyymm: int) -> str:
    return f"{yyyymm // 100:04d}-{yyyymm % 100:02d}"


def money_text(value_minor: int, exp: int) -> str:
    """Exact amount with thousands separators: 682525 -> "6,825.25"."""
    return f"{Decimal(value_minor).scaleb(-exp):,.{exp}f}"


def _units(series: Series, value_minor: int) -> float:
    """Minor units -> currency units, as an axis position (drawing only)."""
    return float(Decimal(value_minor).scaleb(-series.exp))


def _money_axis(axis: Any, largest: float) -> None:
    from matplotlib.ticker import FuncFormatter

    decimals = 0 if largest >= 100 else 2
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.{decimals}f}"))


def _draw(series: Series) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.grid(True, axis="y", alpha=0.3)
    if series.kind == "valuation":
        _draw_valuation(ax, series)
    elif series.kind == "margin":
        _draw_margin(ax, series)
    else:
        _draw_accuracy(ax, series)
    if not series.points:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center",
                va="center", fontsize=14, color="grey")
    return figure


def _draw_valuation(ax: Any, series: Series) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    points = list(series.points)
    if series.period and len(points) > 1 and points[1][0] == series.period[0]:
        points = points[1:]  # the opening balance is replaced on the first day
    if points:
        # a balance holds from its day on; the last one through the end of its day
        dates = [from_ymd(date) for date, _ in points]
        dates = [dates[0] if series.period is None or points[0][0] >= series.period[0]
                 else from_ymd(series.period[0])] + dates[1:]
        dates.append(dates[-1] + dt.timedelta(days=1))
        values = [_units(series, value) for _, value in points]
        values.append(values[-1])
        ax.step(dates, values, where="post", color="#1f5f8b", linewidth=2)
        ax.fill_between(dates, values, step="post", alpha=0.15, color="#1f5f8b")
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        last_value = points[-1][1]
        ax.annotate(f"{money_text(last_value, series.exp)} {series.currency}",
                    (dates[-1], values[-1]), textcoords="offset points", xytext=(-5, 8),
                    ha="right", fontsize=9)
        _money_axis(ax.yaxis, max(abs(v) for v in values))
    ax.set_title(_title(series, "Inventory value (GL balance of the inventory accounts)"))
    ax.set_xlabel("date")
    ax.set_ylabel(f"inventory value ({series.currency})")


def _pad_slots(ax: Any, count: int, slots_min: int = 4) -> None:
    """Keep bars narrow when there are only a few months."""
    pad = max(0.0, (slots_min - count) / 2)
    ax.set_xlim(-0.6 - pad, count - 0.4 + pad)


def _draw_margin(ax: Any, series: Series) -> None:
    labels = [_month(month) for month, _, _ in series.points]
    positions = list(range(len(labels)))
    revenue = [_units(series, r) for _, r, _ in series.points]
    cogs = [_units(series, c) for _, _, c in series.points]
    margin = [_units(series, r - c) for _, r, c in series.points]
    width = 0.27
    ax.bar([p - width for p in positions], revenue, width, label="revenue", color="#3a7d44")
    ax.bar(positions, cogs, width, label="cost of goods sold", color="#c0504d")
    ax.bar([p + width for p in positions], margin, width, label="gross margin",
           color="#1f5f8b")
    for p, (_, r, c) in zip(positions, series.points):
        pct = margin_pct_text(r, c)
        ax.annotate(money_text(r - c, series.exp) + (f"\n{pct}%" if pct is not None else ""),
                    (p + width, max(_units(series, r - c), 0)), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=8)
    ax.set_xticks(positions, labels)
    _pad_slots(ax, len(positions))
    ax.axhline(0, color="black", linewidth=0.8)
    _money_axis(ax.yaxis, max((abs(v) for v in revenue + cogs + margin), default=0))
    ax.set_title(_title(series, "Gross margin by month (revenue - COGS; margin % of revenue)"))
    ax.set_xlabel("month")
    ax.set_ylabel(f"amount ({series.currency})")
    if positions:
        ax.legend(loc="upper right")
    ax.margins(y=0.15)


def _draw_accuracy(ax: Any, series: Series) -> None:
    from matplotlib.ticker import FuncFormatter

    labels = [_month(month) for month, _, _ in series.points]
    positions = list(range(len(labels)))
    # exact percentage (basis points) first, then an axis position
    shares = [div_half_up(10_000 * accurate, total) / 100 if total else 0.0
              for _, total, accurate in series.points]
    ax.bar(positions, shares, 0.6, color="#4f81bd")
    for p, share, (_, total, accurate) in zip(positions, shares, series.points):
        ax.annotate(f"{kpis.ratio_text(100 * accurate, total, 1)}%\n{accurate:,} of {total:,}",
                    (p, share), textcoords="offset points", xytext=(0, 4), ha="center",
                    fontsize=8)
    ax.set_xticks(positions, labels)
    _pad_slots(ax, len(positions))
    ax.set_ylim(0, 115)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}%"))
    ax.set_title(_title(series, "Cycle count accuracy by month (share of count lines "
                                "within tolerance)"))
    ax.set_xlabel("month")
    ax.set_ylabel("accurate count lines (%)")
