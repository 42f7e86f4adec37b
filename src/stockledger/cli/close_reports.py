"""CLI commands of the month-end close reports (registered on `stockledger report`).

Each command parses its options, calls one function of ``service.close`` and
renders the result (``--json``: the data as is). No accounting here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from stockledger.cli.app import AsOf, Db, EntityOpt, Json, _workspace, emit_json, out, report_app
from stockledger.service import close, reports

Period = Annotated[str | None, typer.Option(
    "--period", help="YYYY-MM, YYYY-Qn, YYYY or FROM..TO (YYYY-MM-DD..YYYY-MM-DD).")]


def _table(*columns: str, title: str, right: tuple[int, ...] = ()) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for index in right:
        table.columns[index].justify = "right"
    return table


def _reconciliation_line(data: dict[str, Any], what: str) -> str:
    return (f"{what} open items {data['subledger']}, GL ({', '.join(data['accounts']) or '-'}) "
            f"{data['gl']}, difference {data['difference']}: {data['status']}")


def _print_unmatched(data: dict[str, Any]) -> None:
    if not data["unmatched"]:
        return
    table = _table("event", "type", "date", "sku", "amount",
                   title="On the account but not from a document chain", right=(4,))
    for item in data["unmatched"]:
        event = item["event"]
        table.add_row(f"{event['source']}/{event['id']}", event["type"], event["date"],
                      item["sku"] or "", item["amount"])
    out.print(table)


def _print_aging(aging: dict[str, str]) -> None:
    out.print("aging: " + ", ".join(f"{name} days {amount}" for name, amount in aging.items()))


@report_app.command("grni")
def grni_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
             json_: Json = False) -> None:
    """Receipts not (fully) billed, aged, against the GRNI account balance."""
    data = close.grni_report(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    table = _table("receipt", "date", "sku", "received", "returned", "billed", "open qty",
                   "value received", "value billed", "open", "days", "status",
                   title=f"Goods received not invoiced as of {data['as_of'] or '-'}",
                   right=(3, 4, 5, 6, 7, 8, 9, 10))
    for item in data["items"]:
        receipt = item["receipt"]
        table.add_row(f"{receipt['source']}/{receipt['id']}", receipt["date"], item["sku"] or "",
                      item["qty_received"], item["qty_returned"], item["qty_billed"],
                      item["qty_open"], item["value_received"], item["value_billed"],
                      item["open"], str(item["days"]), item["status"])
    out.print(table)
    _print_unmatched(data)
    _print_aging(data["aging"])
    out.print(_reconciliation_line(data, "GRNI"))


@report_app.command("gsni")
def gsni_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
             json_: Json = False) -> None:
    """Shipments not (fully) invoiced (cogs_on: invoice), aged, against the GSNI account."""
    data = close.gsni_report(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    table = _table("shipment", "date", "sku", "shipped", "returned", "invoiced", "open qty",
                   "value shipped", "open", "days", "status",
                   title=f"Goods shipped not invoiced as of {data['as_of'] or '-'}",
                   right=(3, 4, 5, 6, 7, 8, 9))
    for item in data["items"]:
        shipment = item["shipment"]
        table.add_row(f"{shipment['source']}/{shipment['id']}", shipment["date"],
                      item["sku"] or "", item["qty_shipped"], item["qty_returned"],
                      item["qty_invoiced"], item["qty_open"], item["value_shipped"],
                      item["open"], str(item["days"]), item["status"])
    out.print(table)
    _print_unmatched(data)
    _print_aging(data["aging"])
    out.print(_reconciliation_line(data, "GSNI"))


@report_app.command("counts")
def counts_cmd(db: Db = None, period: Period = None, as_of: AsOf = None,
               entity: EntityOpt = None, json_: Json = False,
               tolerance: Annotated[str, typer.Option(
                   "--tolerance", help="A count is accurate when |variance| / book is at most "
                                       "this percentage.")] = "0") -> None:
    """Cycle counts (book, counted, variance) and count accuracy by location and month."""
    data = close.counts_report(_workspace(db), period, reports.parse_date(as_of), entity,
                               tolerance)
    if json_:
        emit_json(data)
        return
    span = f"{data['period']['from'] or 'start'} to {data['period']['to'] or 'now'}"
    table = _table("date", "count", "sku", "location", "book", "counted", "variance",
                   "variance value", "accurate",
                   title=f"Cycle counts {span} (tolerance {data['tolerance_pct']}%)",
                   right=(4, 5, 6, 7))
    for c in data["counts"]:
        table.add_row(c["date"], f"{c['event']['source']}/{c['event']['id']}", c["sku"],
                      c["location"], c["book_qty"], c["counted_qty"], c["variance_qty"],
                      c["variance_value"], "yes" if c["accurate"] else "no")
    out.print(table)
    summary = _table("by", "counts", "accurate", "accuracy %", "variance value",
                     title="Accuracy", right=(1, 2, 3, 4))
    for row in data["by_location"]:
        summary.add_row(f"location {row['location']}", str(row["counts"]), str(row["accurate"]),
                        row["accuracy_pct"] or "-", row["variance_value"])
    for row in data["by_month"]:
        summary.add_row(f"month {row['month']}", str(row["counts"]), str(row["accurate"]),
                        row["accuracy_pct"] or "-", row["variance_value"])
    total = data["total"]
    summary.add_row("total", str(total["counts"]), str(total["accurate"]),
                    total["accuracy_pct"] or "-", total["variance_value"], style="bold")
    out.print(summary)


@report_app.command("valuation-review")
def valuation_review_cmd(period: Annotated[str, typer.Option(
                             "--period", help="YYYY-MM, YYYY-Qn, YYYY or FROM..TO.")],
                         db: Db = None, entity: EntityOpt = None, json_: Json = False,
                         threshold: Annotated[str, typer.Option(
                             "--threshold", help="Flag moves of unit cost or value above this "
                                                 "percentage.")] = "10") -> None:
    """SKU/locations whose unit cost or value moved more than --threshold % over the period."""
    data = close.valuation_review(_workspace(db), period, threshold, entity)
    if json_:
        emit_json(data)
        return
    out.print(f"Valuation review {data['period']['from']} to {data['period']['to']} "
              f"(opening {data['opening_date']}, threshold {data['threshold_pct']}%): "
              f"{len(data['lines'])} flagged")
    for line in data["lines"]:
        o, c = line["opening"], line["closing"]
        value_pct, cost_pct = line["value_change_pct"], line["unit_cost_change_pct"]
        out.print(f"\n{line['sku']} @ {line['location']}: qty {o['qty']} -> {c['qty']}, value "
                  f"{o['value']} -> {c['value']} ({f'{value_pct}%' if value_pct else 'from zero'}"
                  f"), unit cost {o['unit_cost'] or '-'} -> {c['unit_cost'] or '-'}"
                  + (f" ({cost_pct}%)" if cost_pct else "")
                  + f"; flagged: {', '.join(line['reasons'])}")
        _print_movements(line["movements"], running=False)


def _print_movements(movements: list[dict[str, Any]], *, running: bool, title: str = "") -> None:
    columns = ["date", "event", "type", "kind", "op", "location", "qty", "value"]
    if running:
        columns += ["running qty", "running value", "unit cost"]
    columns.append("entry")
    table = _table(*columns, title=title, right=tuple(range(6, len(columns))))
    for mv in movements:
        event = mv["event"]
        row = [mv["date"], f"{event['source']}/{event['id']}", event["type"], mv["kind"],
               mv["op"], mv["location"], mv["qty"], mv["value"]]
        if running:
            row += [mv["running_qty"], mv["running_value"], mv["unit_cost"] or "-"]
        row.append(str(mv["entry"]) if mv["entry"] is not None else "-")
        table.add_row(*row)
    out.print(table)


@report_app.command("stock-ledger")
def stock_ledger_cmd(sku: Annotated[str, typer.Option("--sku", help="SKU, alias or a "
                                                                    "normalized form.")],
                     location: Annotated[str | None, typer.Option("--location")] = None,
                     db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
                     json_: Json = False) -> None:
    """Every movement of a SKU in date order, with running quantity, value and unit cost."""
    data = close.stock_ledger(_workspace(db), sku, location, reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    where = f" at {data['location']}" if data["location"] else ""
    _print_movements(data["movements"], running=True,
                     title=f"Stock ledger {data['sku']}{where} as of {data['as_of'] or '-'}")
    out.print(f"on hand {data['qty']}, value {data['value']}, unit cost "
              f"{data['unit_cost'] or '-'}")


@report_app.command("aging")
def aging_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
              json_: Json = False) -> None:
    """On-hand inventory by the date it was received, in age buckets."""
    data = close.aging_report(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    buckets = data["buckets"]
    table = _table("sku", "location", "qty", *buckets, "value",
                   title=f"Inventory aging (days) as of {data['as_of'] or '-'}",
                   right=tuple(range(2, len(buckets) + 4)))
    for line in data["lines"]:
        table.add_row(line["sku"], line["location"], line["qty"],
                      *(line["buckets"][b]["value"] for b in buckets), line["value"])
    table.add_row("", "total", "", *(data["totals"][b] for b in buckets), data["total_value"],
                  style="bold")
    out.print(table)
    if any("negative_stock" in line for line in data["lines"]):
        out.print(f"negative stock (owed, valued provisionally): {data['negative_stock']}")
    out.print(f"valuation total {data['valuation_total']}: {data['status']}")


@report_app.command("balance-sheet")
def balance_sheet_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
                      json_: Json = False) -> None:
    """Assets, liabilities and equity (with current-year earnings)."""
    data = close.balance_sheet(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    table = _table("account", "name", "balance",
                   title=f"Balance sheet {data['entity'] or ''} as of {data['as_of'] or '-'}",
                   right=(2,))
    for title, key, total in (("Assets", "assets", "total_assets"),
                              ("Liabilities", "liabilities", "total_liabilities"),
                              ("Equity", "equity", "total_equity")):
        table.add_row("", title, "", style="bold")
        for account in data[key]:
            table.add_row(account["code"] or "", account["name"], account["balance"])
        table.add_row("", f"total {title.lower()}", data[total], style="bold")
    table.add_row("", "total liabilities and equity", data["total_liabilities_and_equity"],
                  style="bold")
    out.print(table)
    out.print(f"difference {data['difference']}: {data['status']}")


@report_app.command("income-statement")
def income_statement_cmd(db: Db = None, period: Period = None, as_of: AsOf = None,
                         entity: EntityOpt = None, json_: Json = False) -> None:
    """Revenue, COGS and gross margin (also per category and SKU), and net income."""
    data = close.income_statement(_workspace(db), period, reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    span = f"{data['period']['from']} to {data['period']['to']}"
    table = _table("account", "name", "amount", title=f"Income statement {span}", right=(2,))
    table.add_row("", "Income", "", style="bold")
    for account in data["income"]:
        table.add_row(account["code"], account["name"], account["amount"])
    table.add_row("", "total income", data["total_income"], style="bold")
    table.add_row("", "Expenses", "", style="bold")
    for account in data["expenses"]:
        table.add_row(account["code"], account["name"], account["amount"])
    table.add_row("", "total expenses", data["total_expenses"], style="bold")
    table.add_row("", "net income", data["net_income"], style="bold")
    out.print(table)
    margin = _table("category / sku", "revenue", "cogs", "gross margin", "margin %",
                    title=f"Gross margin: revenue {data['revenue']}, COGS {data['cogs']}, "
                          f"margin {data['gross_margin']}", right=(1, 2, 3, 4))
    for row in data["by_category"]:
        margin.add_row(f"category {row['category']}", row["revenue"], row["cogs"],
                       row["gross_margin"], row["gross_margin_pct"] or "-")
    for row in data["by_sku"]:
        margin.add_row(f"  {row['sku']}", row["revenue"], row["cogs"], row["gross_margin"],
                       row["gross_margin_pct"] or "-")
    out.print(margin)


def print_valuation_by(data: dict[str, Any]) -> None:
    """`report valuation --by ...` as a table."""
    by = data["by"]
    columns = [by] + (["qty"] if by == "sku" else []) + ["value"]
    table = _table(*columns, title=f"Inventory valuation by {by} as of {data['as_of'] or '-'}",
                   right=tuple(range(1, len(columns))))
    for line in data["lines"]:
        table.add_row(*(line[c] for c in columns))
    table.add_row("total", *([""] if by == "sku" else []), data["total_value"], style="bold")
    out.print(table)
