"""Month-end key figures (`stockledger report kpis`): manual entries,
reconciliation differences, count accuracy, turnover, days of inventory,
write-offs and the estimated carrying cost of a period.

Problem: each figure is a ratio or a sum over the ledger, and a KPI that is
computed one way here and another way in a chart or a close report is worse
than none. So every definition lives in one function below (documented in
docs/decisions/0013-kpis-and-exports.md), sums are done by the database in
integer minor units, and ratios are computed from exact integers
(``div_half_up``) and printed with a fixed number of decimals. No float
touches money.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, case, func, select

from stockledger.adapters.db import schema as s
from stockledger.domain.evaluate import Op
from stockledger.domain.events import from_ymd, ymd, ymd_text
from stockledger.domain.money import div_half_up, format_money, parse_money
from stockledger.domain.setup import Entity, Role, Setup
from stockledger.service import reports
from stockledger.service.audit import MANUAL_KIND
from stockledger.service.workspace import UserError, Workspace

CARRYING_RATE_PCT_DEFAULT = Decimal("25")  # % of average inventory per year (decision 0013)
DAYS_PER_YEAR = 365
TURNOVER_DECIMALS = 2
DAYS_DECIMALS = 1
PERCENT_DECIMALS = 2
TOLERANCE_DECIMALS_MAX = 6


# -- parsing options ---------------------------------------------------------------------

def parse_rate_pct(text: str | None) -> Decimal:
    """--carrying-rate: a yearly percentage, "25" or "25%" or "12.5"."""
    if text is None:
        return CARRYING_RATE_PCT_DEFAULT
    try:
        rate = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        raise UserError(f"--carrying-rate must be a percentage such as 25 or 12.5, "
                        f"got {text!r}") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1000):
        raise UserError(f"--carrying-rate must be between 0 and 1000 (percent a year), "
                        f"got {text!r}")
    return rate


def parse_tolerance(text: str | None) -> Decimal:
    """--count-tolerance: the largest |variance| / book quantity of a count line
    still counted as accurate, in percent ("2" = 2%), as `report counts
    --tolerance`; default 0 (only exact counts)."""
    if text is None:
        return Decimal(0)
    try:
        tolerance = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        raise UserError(f"--count-tolerance must be a percentage such as 2 or 0.5, "
                        f"got {text!r}") from None
    if not tolerance.is_finite() or not Decimal(0) <= tolerance <= Decimal(100):
        raise UserError(f"--count-tolerance must be between 0 and 100 (percent), got {text!r}")
    exponent = tolerance.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > TOLERANCE_DECIMALS_MAX:
        raise UserError(f"--count-tolerance has more than {TOLERANCE_DECIMALS_MAX} decimals")
    return tolerance


# -- small exact helpers -----------------------------------------------------------------

def ratio_text(numerator: int, denominator: int, decimals: int) -> str | None:
    """numerator / denominator, rounded half-up to `decimals` places, as text; None for /0."""
    if denominator == 0:
        return None
    return format_money(div_half_up(numerator * 10**decimals, denominator), decimals)


def days_in(start: int, end: int) -> int:
    return (from_ymd(end) - from_ymd(start)).days + 1


def entity_filter(table: Any, entity: Entity | None) -> list[Any]:
    return [table.c.entity_id == entity.id] if entity is not None else []


def period_filter(table: Any, start: int | None, end: int | None) -> list[Any]:
    clauses = []
    if start is not None:
        clauses.append(table.c.date_ymd >= start)
    if end is not None:
        clauses.append(table.c.date_ymd <= end)
    return clauses


def currency_of(setup: Setup, entity: Entity | None) -> str:
    if entity is not None:
        return entity.currency
    return next(iter(setup.entities.values())).currency


# -- building blocks shared with the charts ----------------------------------------------

def inventory_account_ids(conn: Connection, setup: Setup, entity: Entity | None) -> list[int]:
    """Every inventory account: the role's accounts and any account a movement
    was posted to (as `reports.reconcile` defines them)."""
    m = s.movements
    used = [r[0] for r in conn.execute(select(m.c.account_id).where(*entity_filter(m, entity))
                                       .distinct())]
    return sorted(reports.inventory_accounts(setup, used))


def gl_net(conn: Connection, accounts: Iterable[int], entity: Entity | None,
           start: int | None, end: int | None) -> int:
    """Debits minus credits on these accounts over [start, end] (None: open-ended)."""
    jl = s.journal_lines
    ids = sorted(set(accounts))
    if not ids:
        return 0
    total = conn.execute(select(func.sum(jl.c.amount_minor))
                         .where(jl.c.account_id.in_(ids), *entity_filter(jl, entity),
                                *period_filter(jl, start, end))).scalar()
    return int(total or 0)


def gl_net_by_month(conn: Connection, accounts: Iterable[int], entity: Entity | None,
                    start: int | None, end: int | None) -> dict[int, int]:
    """{yyyymm: debits minus credits} on these accounts."""
    jl = s.journal_lines
    ids = sorted(set(accounts))
    if not ids:
        return {}
    month = (jl.c.date_ymd // 100).label("month")
    rows = conn.execute(select(month, func.sum(jl.c.amount_minor))
                        .where(jl.c.account_id.in_(ids), *entity_filter(jl, entity),
                               *period_filter(jl, start, end))
                        .group_by(month))
    return {int(r[0]): int(r[1] or 0) for r in rows}


def gl_net_by_day(conn: Connection, accounts: Iterable[int], entity: Entity | None,
                  start: int | None, end: int | None) -> list[tuple[int, int]]:
    """[(yyyymmdd, debits minus credits that day)] in date order, days with lines only."""
    jl = s.journal_lines
    ids = sorted(set(accounts))
    if not ids:
        return []
    rows = conn.execute(select(jl.c.date_ymd, func.sum(jl.c.amount_minor))
                        .where(jl.c.account_id.in_(ids), *entity_filter(jl, entity),
                               *period_filter(jl, start, end))
                        .group_by(jl.c.date_ymd).order_by(jl.c.date_ymd))
    return [(int(r[0]), int(r[1] or 0)) for r in rows]


@dataclass(frozen=True, slots=True)
class InventoryDays:
    """The inventory GL balance over a period, day by day (decision 0013)."""

    days: int
    opening_minor: int  # at the end of the day before the period
    closing_minor: int  # at the end of the period's last day
    balance_days_minor: int  # the sum of the end-of-day balances of every day of the period

    @property
    def average_minor(self) -> int:
        return div_half_up(self.balance_days_minor, self.days)


def inventory_days(conn: Connection, accounts: list[int], entity: Entity | None,
                   start: int, end: int) -> InventoryDays:
    """Opening and closing balance of the inventory accounts, and the sum of their
    end-of-day balances over [start, end]: a change on day d counts for every
    day from d to the end."""
    before = ymd(from_ymd(start) - dt.timedelta(days=1))
    opening = gl_net(conn, accounts, entity, None, before)
    days = days_in(start, end)
    balance, total = opening, opening * days
    for date, net in gl_net_by_day(conn, accounts, entity, start, end):
        balance += net
        total += net * days_in(date, end)
    return InventoryDays(days, opening, balance, total)


@dataclass(frozen=True, slots=True)
class CountLine:
    """One counted SKU at one location (one line of a cycle_count event)."""

    event_id: int
    date_ymd: int
    counted_micro: int
    variance_micro: int  # counted - book, after every recost of the count

    @property
    def book_micro(self) -> int:
        return self.counted_micro - self.variance_micro

    def accurate(self, tolerance_pct: Decimal) -> bool:
        """100 x |variance| / |book qty| <= tolerance (percent); against a book
        quantity of zero only an exact count is accurate. The rule of `report
        counts` (service.close.counts_report)."""
        if self.book_micro == 0:
            return self.variance_micro == 0
        numerator, denominator = tolerance_pct.as_integer_ratio()
        return abs(self.variance_micro) * 100 * denominator <= numerator * abs(self.book_micro)


def count_lines(conn: Connection, entity: Entity | None, start: int | None,
                end: int | None) -> Iterator[CountLine]:
    """Every line of the cycle counts dated in [start, end] that were not reversed,
    with its variance as it stands now (its post plus its recosts)."""
    m, ev, rv = s.movements, s.events, s.reversals
    query = (select(m.c.event_id, ev.c.date_ymd, func.max(m.c.param_qty_micro),
                    func.sum(m.c.qty_micro))
             .select_from(m.join(ev, ev.c.id == m.c.event_id))
             .where(ev.c.kind == "cycle_count", m.c.op == int(Op.COUNT),
                    m.c.event_id.not_in(select(rv.c.event_id)),
                    *entity_filter(m, entity), *period_filter(ev, start, end))
             .group_by(m.c.event_id, m.c.op_no, ev.c.date_ymd))
    for event_id, date, counted, variance in conn.execution_options(yield_per=10_000) \
            .execute(query):
        yield CountLine(int(event_id), int(date), int(counted or 0), int(variance or 0))


def count_accuracy(ws: Workspace, entity_code: str | None, start: int | None,
                   end: int | None, tolerance_pct: Decimal) -> dict[int, tuple[int, int]]:
    """{yyyymm: (count lines, accurate lines)}, from `report counts`
    (service.close.counts_report) where that report is installed, so both say
    the same; otherwise from ``count_lines`` with the same rule."""
    try:
        from stockledger.service.close import counts_report
    except ImportError:
        counts_report = None  # type: ignore[assignment]
    if counts_report is not None:
        period = f"{ymd_text(start)}..{ymd_text(end)}" if start and end else None
        data = counts_report(ws, period, end if not period else None, entity_code,
                             plain_decimal(tolerance_pct))
        return {int(month["month"].replace("-", "")): (month["counts"], month["accurate"])
                for month in data["by_month"]}
    return own_count_accuracy(ws, entity_code, start, end, tolerance_pct)


def own_count_accuracy(ws: Workspace, entity_code: str | None, start: int | None,
                       end: int | None, tolerance_pct: Decimal) -> dict[int, tuple[int, int]]:
    months: dict[int, tuple[int, int]] = {}
    with ws.read() as conn:
        entity = reports._entity(ws.setup(conn), entity_code)
        for line in count_lines(conn, entity, start, end):
            total, accurate = months.get(line.date_ymd // 100, (0, 0))
            months[line.date_ymd // 100] = (total + 1, accurate + line.accurate(tolerance_pct))
    return months


def write_offs(conn: Connection, accounts: Iterable[int], entity: Entity | None,
               start: int, end: int) -> tuple[int, int]:
    """(losses, gains) posted in the period to the adjustment and revaluation accounts.

    Lines are netted per operation: per event and operation number, with a
    reversal's mirror lines counted on the event it reverses and recosts on the
    event they correct. A net debit is a loss (a write-off), a net credit a
    gain. So a reversed write-off is none, and a recost adjusts its write-off."""
    jl, rv = s.journal_lines, s.reversals
    ids = sorted(set(accounts))
    if not ids:
        return 0, 0
    owner = func.coalesce(rv.c.event_id, jl.c.event_id).label("owner")
    per_op = (select(owner, jl.c.op_no, func.sum(jl.c.amount_minor).label("net"))
              .select_from(jl.outerjoin(rv, rv.c.reversal_event_id == jl.c.event_id))
              .where(jl.c.account_id.in_(ids), *entity_filter(jl, entity),
                     *period_filter(jl, start, end))
              .group_by(owner, jl.c.op_no)).subquery()
    net = per_op.c.net
    row = conn.execute(select(func.sum(func.coalesce(_positive(net), 0)),
                              func.sum(func.coalesce(_positive(-net), 0)))).first()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def _positive(expr: Any) -> Any:
    return case((expr > 0, expr), else_=0)


# -- the report --------------------------------------------------------------------------

def kpis(ws: Workspace, period: tuple[int, int], entity_code: str | None = None,
         carrying_rate_pct: Decimal = CARRYING_RATE_PCT_DEFAULT,
         count_tolerance_pct: Decimal = Decimal(0)) -> dict[str, Any]:
    """The key figures of a period (first day, last day), see decision 0013."""
    ws.require()
    start, end = period
    je, ev = s.journal_entries, s.events
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        exp = reports._exp(setup, entity)
        manual = conn.execute(
            select(func.count()).select_from(je.join(ev, ev.c.id == je.c.event_id))
            .where(ev.c.kind == MANUAL_KIND, *entity_filter(je, entity),
                   *period_filter(je, start, end))).scalar() or 0
        inventory = inventory_account_ids(conn, setup, entity)
        stock = inventory_days(conn, inventory, entity, start, end)
        cogs = gl_net(conn, reports.role_accounts(setup, Role.COGS), entity, start, end)
        adjustment_accounts = (reports.role_accounts(setup, Role.INVENTORY_ADJUSTMENT)
                               | reports.role_accounts(setup, Role.REVALUATION))
        losses, gains = write_offs(conn, adjustment_accounts, entity, start, end)

    counts = count_accuracy(ws, entity_code, start, end, count_tolerance_pct)
    started = time.perf_counter()
    reconciliation = reports.reconcile(ws, end, entity_code)
    seconds = time.perf_counter() - started
    differences = [parse_money(a["difference"], exp) for a in reconciliation["accounts"]]
    differences = [d for d in differences if d]

    days = stock.days
    lines_counted = sum(total for total, _ in counts.values())
    lines_accurate = sum(accurate for _, accurate in counts.values())
    rate_num, rate_den = carrying_rate_pct.as_integer_ratio()
    # average = balance_days / days, so COGS / average = COGS x days / balance_days and
    # days / turnover = balance_days / COGS
    turnover = ratio_text(cogs * days, stock.balance_days_minor, TURNOVER_DECIMALS) \
        if stock.balance_days_minor > 0 else None
    days_of_inventory = ratio_text(stock.balance_days_minor, cogs, DAYS_DECIMALS) \
        if stock.balance_days_minor > 0 and cogs > 0 else None
    carrying = div_half_up(rate_num * stock.balance_days_minor,
                           rate_den * 100 * DAYS_PER_YEAR)
    return {
        "period": {"from": ymd_text(start), "to": ymd_text(end), "days": days},
        "entity": entity.code if entity else None,
        "currency": currency_of(setup, entity),
        "manual_entries": int(manual),
        "reconciliation": {
            "as_of": ymd_text(end), "status": reconciliation["status"],
            "differences": len(differences),
            "difference_value": format_money(sum(abs(d) for d in differences), exp),
            "items": len(reconciliation.get("items", []) or []),
            "seconds": round(seconds, 3),
        },
        "counts": {
            "lines": lines_counted, "accurate": lines_accurate,
            "accuracy_pct": ratio_text(100 * lines_accurate, lines_counted, PERCENT_DECIMALS),
            "tolerance_pct": plain_decimal(count_tolerance_pct),
        },
        "inventory": {
            "opening": format_money(stock.opening_minor, exp),
            "closing": format_money(stock.closing_minor, exp),
            "average": format_money(stock.average_minor, exp),
        },
        "cogs": format_money(cogs, exp),
        "turnover": turnover,
        "days_of_inventory": days_of_inventory,
        "write_offs": format_money(losses, exp),
        "adjustment_gains": format_money(gains, exp),
        "carrying_rate_pct": plain_decimal(carrying_rate_pct),
        "carrying_cost": format_money(carrying, exp),
    }


def plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
