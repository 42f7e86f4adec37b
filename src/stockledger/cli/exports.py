"""CLI commands of the exports and KPI/chart reports (registered on import):
`report kpis`, `report chart`, `export beancount|journal-csv|audit`."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from stockledger.cli.app import (
    AsOf,
    Db,
    EntityOpt,
    Json,
    _workspace,
    app,
    emit_json,
    out,
    report_app,
)
from stockledger.service import reports
from stockledger.service.workspace import UserError

export_app = typer.Typer(no_args_is_help=True, help="Exports: beancount, journal CSV, audit files.")
app.add_typer(export_app, name="export")

Period = Annotated[Optional[str], typer.Option(
    "--period", help="2026-03, 2026-Q1, 2026 or FROM..TO (dates YYYY-MM-DD).")]
OutFile = Annotated[str, typer.Option("--out", help="File to write.")]
Tolerance = Annotated[Optional[str], typer.Option(
    "--count-tolerance", help="Largest |variance| / book qty of a count line still "
                              "accurate, in percent (as `report counts --tolerance`); "
                              "default 0.")]


# -- report kpis ------------------------------------------------------------------------------

@report_app.command("kpis")
def kpis_cmd(period: Period = None, db: Db = None, entity: EntityOpt = None, json_: Json = False,
             carrying_rate: Annotated[Optional[str], typer.Option(
                 "--carrying-rate", help="Yearly carrying cost, percent of average inventory "
                                         "(default 25).")] = None,
             count_tolerance: Tolerance = None) -> None:
    """Key figures of a period: manual entries, reconciliation, count accuracy,
    turnover, days of inventory, write-offs, carrying cost."""
    from stockledger.service import kpis

    span = reports.parse_period(period)
    data = kpis.kpis(_workspace(db), span, entity, kpis.parse_rate_pct(carrying_rate),
                     kpis.parse_tolerance(count_tolerance))
    if json_:
        emit_json(data)
        return
    currency = data["currency"]
    rec, counts, inventory = data["reconciliation"], data["counts"], data["inventory"]
    table = Table("figure", "value", "how",
                  title=f"KPIs {data['entity'] or ''} {data['period']['from']} to "
                        f"{data['period']['to']} ({data['period']['days']} days, {currency})",
                  title_justify="left")
    table.columns[1].justify = "right"

    def dash(value: Any) -> str:
        return "-" if value is None else str(value)

    rows = [
        ("manual journal entries", str(data["manual_entries"]), "entries posted by hand"),
        ("reconciliation differences", f"{rec['differences']} ({rec['difference_value']})",
         f"inventory accounts out of balance at {rec['as_of']}: {rec['status']}, "
         f"{rec['seconds']:.3f} s"),
        ("count accuracy", f"{dash(counts['accuracy_pct'])}%" if counts["accuracy_pct"]
         else "-", f"{counts['accurate']} of {counts['lines']} count lines within "
                   f"{counts['tolerance_pct']}% of book"),
        ("cost of goods sold", data["cogs"], "COGS accounts, net"),
        ("average inventory", inventory["average"],
         f"mean of the end-of-day balances (opening {inventory['opening']}, "
         f"closing {inventory['closing']})"),
        ("inventory turnover", dash(data["turnover"]), "COGS / average inventory"),
        ("days of inventory", dash(data["days_of_inventory"]), "days / turnover"),
        ("write-offs", data["write_offs"],
         f"adjustment and revaluation losses (gains {data['adjustment_gains']})"),
        ("carrying cost (estimate)", data["carrying_cost"],
         f"{data['carrying_rate_pct']}% a year x average inventory x days / 365"),
    ]
    for row in rows:
        table.add_row(*row)
    out.print(table)


# -- report chart -----------------------------------------------------------------------------

@report_app.command("chart")
def chart_cmd(kind: Annotated[str, typer.Argument(
                  metavar="valuation|margin|accuracy",
                  help="valuation: inventory value over time; margin: gross margin by month; "
                       "accuracy: cycle count accuracy by month.")],
              out_file: Annotated[str, typer.Option("--out", help="PNG file to write.")],
              period: Period = None, db: Db = None, entity: EntityOpt = None,
              count_tolerance: Tolerance = None, json_: Json = False) -> None:
    """Draw a chart into a PNG file."""
    from stockledger.service import charts, kpis

    if kind not in charts.CHARTS:
        raise UserError(f"unknown chart {kind!r} (choose one of: {', '.join(charts.CHARTS)})")
    span = reports.parse_period(period) if period else None
    result = charts.chart(_workspace(db), kind, out_file, span, entity,
                          kpis.parse_tolerance(count_tolerance))
    if json_:
        emit_json(result)
    else:
        out.print(f"wrote {result['out']} ({kind} chart, {result['points']} data point(s), "
                  f"{result['bytes']:,} bytes)")


# -- export ----------------------------------------------------------------------------------------

@export_app.command("beancount")
def export_beancount(out_file: OutFile, db: Db = None, entity: EntityOpt = None,
                     as_of: AsOf = None, json_: Json = False) -> None:
    """The general ledger as a beancount file (check it with bean-check)."""
    from stockledger.service import exports

    result = exports.beancount(_workspace(db), out_file, entity, reports.parse_date(as_of))
    if json_:
        emit_json(result)
    else:
        out.print(f"wrote {result['out']}: {result['entries']:,} transactions, "
                  f"{result['lines']:,} postings, {result['accounts']} accounts")


@export_app.command("journal-csv")
def export_journal_csv(out_file: OutFile, db: Db = None, entity: EntityOpt = None,
                       period: Period = None, as_of: AsOf = None, json_: Json = False) -> None:
    """One CSV row per journal line (columns in docs/exports.md)."""
    from stockledger.service import exports

    if period is not None and as_of is not None:
        raise UserError("give either --period or --as-of, not both")
    result = exports.journal_csv(_workspace(db), out_file, entity,
                                 reports.parse_period(period) if period else None,
                                 reports.parse_date(as_of))
    if json_:
        emit_json(result)
    else:
        out.print(f"wrote {result['out']}: {result['rows']:,} journal lines")


@export_app.command("audit")
def export_audit(out_dir: Annotated[str, typer.Option("--out", help="Directory to write into.")],
                 period: Period = None, db: Db = None, entity: EntityOpt = None,
                 json_: Json = False) -> None:
    """events.csv, movements.csv, entries.csv, lines.csv of a period, with a manifest."""
    from stockledger.service import exports

    result = exports.audit(_workspace(db), reports.parse_period(period), out_dir, entity)
    if json_:
        emit_json(result)
        return
    files = ", ".join(f"{name} {rows:,}" for name, rows in result["files"].items())
    out.print(f"wrote {result['out']}: {files} rows; manifest.json, README.txt")
    last = result["last_entry"]
    if last:
        out.print(f"last entry in the chain: {last['entry_id']} (position {last['chain_seq']}, "
                  f"hash {last['hash'][:16]}...)")
