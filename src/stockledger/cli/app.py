"""The command line (SPEC 8): parse, call a service, render. No accounting here.

A user mistake prints one clear line (setup errors: every problem) and exits
non-zero; a traceback means a bug in stockledger.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from stockledger.domain.errors import SetupError
from stockledger.service import reports
from stockledger.service.ingest import PostSummary, parse_file, parse_lines, post_events
from stockledger.service.workspace import (
    UserError,
    Workspace,
    apply_config,
    config_history,
    init_workspace,
    read_setup_file,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="stockledger: inventory events in, a valued subledger and a balanced "
                       "general ledger out.")
config_app = typer.Typer(no_args_is_help=True, help="Versioned master data.")
report_app = typer.Typer(no_args_is_help=True, help="Reports (all take --as-of, --entity, --json).")
exceptions_app = typer.Typer(no_args_is_help=True, help="The exception queue.")
period_app = typer.Typer(no_args_is_help=True, help="Closing and reopening periods.")
scenario_app = typer.Typer(no_args_is_help=True, help="Scenario files (SPEC 9).")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(config_app, name="config")
app.add_typer(report_app, name="report")
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(period_app, name="period")
app.add_typer(scenario_app, name="scenario")
app.add_typer(bench_app, name="bench")

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

HELPER_BYTES_MIN = 4_000_000  # from this size on, a helper process parses while we post

Db = Annotated[Optional[str], typer.Option(
    "--db", help="Database URL or SQLite file (default: $STOCKLEDGER_DB, else ./stockledger.db).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AsOf = Annotated[Optional[str], typer.Option("--as-of", help="Report as of this date (YYYY-MM-DD).")]
EntityOpt = Annotated[Optional[str], typer.Option("--entity", help="Entity code.")]


def emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _workspace(db: str | None) -> Workspace:
    return Workspace(db)


# -- init / config -----------------------------------------------------------------------

@app.command()
def init(config: Annotated[str, typer.Option("--config", help="Setup file (YAML).")],
         db: Db = None, json_: Json = False) -> None:
    """Create the workspace: schema (migrations) and the first setup version."""
    doc = read_setup_file(config)
    ws = _workspace(db)
    version = init_workspace(ws, doc)
    if json_:
        emit_json({"workspace": ws.display_url(), "config_version": version})
    else:
        out.print(f"initialised {ws.display_url()} (setup version {version}: "
                  f"{len(doc.get('products', []))} products, {len(doc.get('locations', []))} "
                  f"locations, {len(doc.get('accounts', []))} accounts)")


@config_app.command("apply")
def config_apply(file: str, reason: Annotated[str, typer.Option("--reason")],
                 db: Db = None, json_: Json = False) -> None:
    """Apply a new version of the setup (versioned: who, when, why, old -> new)."""
    doc = read_setup_file(file)
    version, changes = apply_config(_workspace(db), doc, reason)
    if json_:
        emit_json({"config_version": version, "changes": changes})
        return
    out.print(f"setup version {version} applied ({len(changes)} change(s)):")
    for change in changes:
        out.print(f"  {change['change']:8} {change['section']} {change.get('code', '')}")


@config_app.command("history")
def config_history_cmd(db: Db = None, json_: Json = False) -> None:
    """Every setup version with its changes."""
    history = config_history(_workspace(db))
    if json_:
        emit_json(history)
        return
    table = Table("version", "applied at", "actor", "reason", "changes")
    for item in history:
        summary = ", ".join(f"{c['change']} {c.get('section', '')} {c.get('code', '')}".strip()
                            for c in item["changes"][:6])
        if len(item["changes"]) > 6:
            summary += f", +{len(item['changes']) - 6} more"
        table.add_row(str(item["version"]), item["applied_at"][:19], item["actor"],
                      item["reason"], summary)
    out.print(table)


# -- post -------------------------------------------------------------------------------------

@app.command()
def post(file: Annotated[str, typer.Argument(help="Events as JSON lines, or - for stdin.")],
         db: Db = None, json_: Json = False,
         dry_run: Annotated[bool, typer.Option("--dry-run", help=(
             "Show the entries that would be posted; commit nothing."))] = False,
         quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
         ) -> None:
    """Post events; prints counts. Bad events go to the exception queue."""
    ws = _workspace(db)
    ws.require()
    show_progress = sys.stderr.isatty() and not quiet and not json_
    if file == "-":
        summary = post_events(ws, parse_lines(sys.stdin.buffer), dry_run=dry_run,
                              keep_results=True)
    else:
        if os.path.isdir(file):
            raise UserError(f"cannot read {file}: it is a directory")
        try:
            size = os.path.getsize(file)
            open(file, "rb").close()
        except OSError as exc:
            raise UserError(f"cannot read {file}: {exc.strerror}") from None
        name = os.path.basename(file) + " "
        helper = size >= HELPER_BYTES_MIN  # big files: parse on the other core
        setup = ws.current_setup() if helper else None
        if show_progress:
            with Progress(TextColumn("posting"), BarColumn(), TransferSpeedColumn(),
                          TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("post", total=size)
                summary = post_events(
                    ws, parse_file(file, name, helper=helper, setup=setup,
                                   on_bytes=lambda n: progress.advance(task, n)),
                    dry_run=dry_run, keep_results=True)
        else:
            summary = post_events(ws, parse_file(file, name, helper=helper, setup=setup),
                                  dry_run=dry_run, keep_results=True)
    _print_summary(summary, json_, dry_run)


def _print_summary(summary: PostSummary, json_: bool, dry_run: bool) -> None:
    failed = [r for r in summary.results if r.status == "exception"]
    if json_:
        data = summary.as_dict()
        data["seconds"] = round(summary.seconds, 3)
        data["exception_list"] = [{"source": r.source, "id": r.ext_id, "code": r.code,
                                   "message": r.message} for r in failed]
        if dry_run:
            data["dry_run"] = True
            data["entries"] = summary.entries
        emit_json(data)
        return
    if dry_run:
        _print_entries(summary.entries)
        out.print("[dry run: nothing was committed]")
    rate = summary.total / summary.seconds if summary.seconds else 0
    out.print(f"{'would post' if dry_run else 'posted'} {summary.posted}, duplicates "
              f"{summary.duplicates}, exceptions {summary.exceptions}"
              + (f", recost entries {summary.recosts}" if summary.recosts else "")
              + f" ({summary.total} events in {summary.seconds:.2f} s, {rate:,.0f}/s)")
    for result in failed[:20]:
        out.print(f"  {result.code:18} {result.source}/{result.ext_id}: {result.message}")
    if len(failed) > 20:
        out.print(f"  ... and {len(failed) - 20} more (stockledger exceptions list)")


def _print_entries(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        table = Table(title=f"{entry['kind']} {entry['event']['source']}/{entry['event']['id']} "
                            f"{entry['date']}", title_justify="left")
        for column in ("account", "debit", "credit", "sku", "location"):
            table.add_column(column, justify="right" if column in ("debit", "credit") else "left")
        for line in entry["lines"]:
            table.add_row(line["account"], line["debit"], line["credit"], line["sku"] or "",
                          line["location"] or "")
        out.print(table)


# -- reports ---------------------------------------------------------------------------------------

@report_app.command("trial-balance")
def trial_balance_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
                      json_: Json = False) -> None:
    """Debits, credits and balance per account."""
    data = reports.trial_balance(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    table = Table("account", "name", "debit", "credit", "balance",
                  title=f"Trial balance {data['entity'] or ''} as of {data['as_of'] or '-'}",
                  title_justify="left")
    for col in (2, 3, 4):
        table.columns[col].justify = "right"
    for a in data["accounts"]:
        table.add_row(a["code"], a["name"], a["debit"], a["credit"], a["balance"])
    table.add_row("", "total", data["total_debit"], data["total_credit"], "", style="bold")
    out.print(table)


@report_app.command("valuation")
def valuation_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
                  json_: Json = False,
                  by: Annotated[Optional[str], typer.Option(
                      "--by", help="Sum per sku, location or category.")] = None) -> None:
    """Quantity and value on hand per SKU and location."""
    data = reports.valuation(_workspace(db), reports.parse_date(as_of), entity, by=by)
    if json_:
        emit_json(data)
        return
    if by is not None:
        from stockledger.cli.close_reports import print_valuation_by

        print_valuation_by(data)
        return
    table = Table("sku", "location", "qty", "value",
                  title=f"Inventory valuation as of {data['as_of'] or '-'}", title_justify="left")
    table.columns[2].justify = table.columns[3].justify = "right"
    for line in data["lines"]:
        table.add_row(line["sku"], line["location"], line["qty"], line["value"])
    table.add_row("", "total", "", data["total_value"], style="bold")
    out.print(table)


@report_app.command("wip")
def wip_cmd(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
            json_: Json = False) -> None:
    """Open work in progress per production order, against the WIP accounts."""
    data = reports.wip_report(_workspace(db), reports.parse_date(as_of), entity)
    if json_:
        emit_json(data)
        return
    table = Table("order", "issues", "costs", "wip",
                  title=f"Work in progress as of {data['as_of'] or '-'}: {data['status']}",
                  title_justify="left")
    table.columns[3].justify = "right"
    for order in data["orders"]:
        table.add_row(order["order"], str(len(order["issues"])), str(len(order["costs"])),
                      order["wip"])
    table.add_row("", "", "total (GL " + data["gl"] + ")", data["total"], style="bold")
    out.print(table)


@report_app.command("sources")
def sources_cmd(db: Db = None, json_: Json = False) -> None:
    """Per source: events posted, duplicates, conflicts, last seq and gaps."""
    data = reports.sources_report(_workspace(db))
    if json_:
        emit_json(data)
        return
    table = Table("source", "posted", "duplicates", "conflicts", "exceptions", "last seq", "gaps")
    for r in data:
        gaps = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in r["gaps"][:5])
        table.add_row(r["source"], str(r["events_posted"]), str(r["duplicates"]),
                      str(r["conflicts"]), str(r["exceptions"]), str(r["last_seq"] or ""), gaps)
    out.print(table)


journal_app = typer.Typer(help="Journal entries: list them, or add a manual entry.")
app.add_typer(journal_app, name="journal")


@journal_app.callback(invoke_without_command=True)
def journal(ctx: typer.Context, db: Db = None,
            event: Annotated[Optional[str], typer.Option("--event")] = None,
            source: Annotated[Optional[str], typer.Option("--source")] = None,
            as_of: AsOf = None, entity: EntityOpt = None, json_: Json = False,
            limit: Annotated[Optional[int], typer.Option("--limit")] = None) -> None:
    """Journal entries (post, recost, reversal, manual) with their lines."""
    if ctx.invoked_subcommand is not None:
        return
    data = reports.journal(_workspace(db), event=event, source=source,
                           as_of=reports.parse_date(as_of), entity_code=entity, limit=limit)
    if json_:
        emit_json(data)
        return
    if not data:
        out.print("no journal entries")
    _print_entries(data)


@journal_app.command("add")
def journal_add(file: Annotated[str, typer.Argument(help="A YAML or JSON entry: id, date, "
                                                         "entity, reason, lines.")],
                allow_control_account: Annotated[bool, typer.Option(
                    "--allow-control-account",
                    help="Allow lines on inventory, GRNI or GSNI accounts.")] = False,
                reason: Annotated[Optional[str], typer.Option(
                    "--reason", help="Why a control account is posted by hand.")] = None,
                db: Db = None, json_: Json = False) -> None:
    """Post a manual journal entry (balanced, dated, with a reason)."""
    from stockledger.service.audit import add_manual_entry, read_manual_entry

    result = add_manual_entry(_workspace(db), read_manual_entry(file),
                              allow_control_account=allow_control_account, control_reason=reason)
    if json_:
        emit_json(result)
    elif result["status"] == "duplicate":
        out.print(f"manual entry {result['id']} was already posted (duplicate)")
    else:
        flagged = result["control_accounts"]
        out.print(f"posted manual entry {result['id']} (entry {result['entry']})"
                  + (f"; control accounts {', '.join(flagged)} flagged for reconciliation"
                     if flagged else ""))


@app.command()
def verify(db: Db = None, json_: Json = False) -> None:
    """Recompute the journal's hash chain; name the first entry that does not match."""
    from stockledger.service.audit import verify as run

    data = run(_workspace(db))
    if json_:
        emit_json(data)
    elif data["status"] == "intact":
        out.print(f"hash chain intact: {data['entries_checked']} entries checked")
    else:
        broken = data["first_broken"]
        event = broken.get("event") or {}
        out.print(f"hash chain BROKEN at entry {broken['entry']} (chain position "
                  f"{broken['chain_seq']}, {broken.get('kind', '')} of "
                  f"{event.get('source', '?')}/{event.get('id', '?')} dated "
                  f"{broken.get('date', '?')}): {broken['reason']}")
    if data["status"] != "intact":
        raise typer.Exit(1)


@app.command()
def explain(event: Annotated[str, typer.Option("--event", help="The event's id.")],
            source: Annotated[Optional[str], typer.Option("--source")] = None,
            db: Db = None, json_: Json = False) -> None:
    """One event's entries, the recosts it received and caused, and why."""
    data = reports.explain(_workspace(db), event, source)
    if json_:
        emit_json(data)
        return
    head = data["event"]
    out.print(f"{head['type']} {head['source']}/{head['id']} dated {head['date']}"
              + (f", refers to {data['refers_to']['type']} {data['refers_to']['id']}"
                 if data["refers_to"] else ""))
    if data["reversed_by"]:
        rev = data["reversed_by"]
        out.print(f"reversed by {rev['id']} (dated {rev['date']}, made {rev['reversed_at'][:19]})")
    sections = (("posted", data["entries"]), ("recosts received", data["recosts_received"]),
                ("recosts caused on other events", data["recosts_caused"]),
                ("reversal", data["reversal_entries"]))
    for title, entries in sections:
        if not entries:
            continue
        out.print(f"\n{title}:")
        for entry in entries:
            why = ""
            if entry["caused_by"] and title != "posted":
                cause = entry["caused_by"]
                why = f" because of {cause['type']} {cause['id']} dated {cause['date']}"
            target = entry["event"]
            on = f" on {target['type']} {target['id']}" if title.startswith("recosts caused") else ""
            out.print(f"  entry {entry['entry']} {entry['date']} {entry['kind']}{on}{why}")
            for line in entry["lines"]:
                amount = f"Dr {line['debit']}" if line["debit"] != "0.00" else f"Cr {line['credit']}"
                out.print(f"      {line['account']:>8}  {amount:>14}  {line['sku'] or ''} "
                          f"{line['location'] or ''}")
    if data["net_by_account"]:
        out.print("\nnet effect of this event: " + ", ".join(
            f"{code} {amount}" for code, amount in data["net_by_account"].items()))


@app.command()
def reconcile(db: Db = None, as_of: AsOf = None, entity: EntityOpt = None,
              by: Annotated[Optional[str], typer.Option(
                  "--by", help="Break each account down by location or category.")] = None,
              deep: Annotated[bool, typer.Option(
                  "--deep", help="Compare movements and journal lines event by event even "
                                 "when the totals agree.")] = False,
              json_: Json = False) -> None:
    """Subledger value against the GL balance of every inventory account, with the items
    that explain any difference (manual journals, entries that no movement backs)."""
    data = reports.reconcile(_workspace(db), reports.parse_date(as_of), entity, by=by, deep=deep)
    if json_:
        emit_json(data)
        return
    table = Table("account", "subledger", "gl", "difference", "explained", "unexplained",
                  title=f"Reconciliation as of {data['as_of'] or '-'}: {data['status']}",
                  title_justify="left")
    for col in (1, 2, 3, 4, 5):
        table.columns[col].justify = "right"
    for a in data["accounts"]:
        table.add_row(a["account"], a["subledger"], a["gl"], a["difference"], a["explained"],
                      a["unexplained"])
        for part in a.get("by_" + (by or ""), []):
            table.add_row(f"  {part[by]}", part["subledger"], part["gl"], part["difference"], "", "",
                          style="dim")
    out.print(table)
    if data["items"]:
        items = Table("account", "kind", "date", "entry", "event", "amount", "note",
                      title="Reconciling items", title_justify="left")
        items.columns[5].justify = "right"
        for item in data["items"]:
            items.add_row(item["account"], item["kind"], item["date"], str(item["entry"]),
                          f"{item['event']['source']}/{item['event']['id']}", item["amount"],
                          item["note"])
        out.print(items)


# -- exceptions ------------------------------------------------------------------------------------

@exceptions_app.command("list")
def exceptions_list_cmd(db: Db = None, json_: Json = False) -> None:
    """Events waiting in the exception queue, with the reason."""
    data = reports.exceptions_list(_workspace(db))
    if json_:
        emit_json(data)
        return
    if not data:
        out.print("the exception queue is empty")
        return
    table = Table("source", "id", "code", "message")
    for e in data:
        table.add_row(e["source"], e["id"], e["code"], e["message"])
    out.print(table)


@exceptions_app.command("retry")
def exceptions_retry_cmd(ids: Annotated[Optional[list[str]], typer.Argument(
                             help="Event ids to retry (default: the whole queue).")] = None,
                         source: Annotated[Optional[str], typer.Option("--source")] = None,
                         db: Db = None, json_: Json = False) -> None:
    """Post the queued events again (after fixing the setup or sending what was missing)."""
    summary = reports.exceptions_retry(_workspace(db), ids or None, source)
    _print_summary(summary, json_, False)


@exceptions_app.command("discard")
def exceptions_discard_cmd(event_id: Annotated[str, typer.Argument(metavar="ID")],
                           reason: Annotated[str, typer.Option("--reason")],
                           source: Annotated[Optional[str], typer.Option("--source")] = None,
                           db: Db = None, json_: Json = False) -> None:
    """Drop one queued event, recording who, when and why."""
    reports.exceptions_discard(_workspace(db), event_id, reason, source)
    if json_:
        emit_json({"discarded": {"source": source or "default", "id": event_id}})
    else:
        out.print(f"discarded {source or 'default'}/{event_id}")


# -- periods -----------------------------------------------------------------------------------------

@period_app.command("close")
def period_close_cmd(entity: Annotated[str, typer.Option("--entity")],
                     through: Annotated[str, typer.Option("--through")], db: Db = None) -> None:
    """Lock every date up to --through for the entity."""
    reports.period_close(_workspace(db), entity, reports.parse_date(through, "--through"))
    out.print(f"{entity} closed through {through}")


@period_app.command("reopen")
def period_reopen_cmd(entity: Annotated[str, typer.Option("--entity")],
                      through: Annotated[str, typer.Option("--through", help=(
                          "The entity stays closed through this date; later dates reopen."))],
                      reason: Annotated[str, typer.Option("--reason")], db: Db = None) -> None:
    """Reopen the dates after --through (recorded with the reason)."""
    reports.period_reopen(_workspace(db), entity, reports.parse_date(through, "--through"), reason)
    out.print(f"{entity} now closed through {through}")


@period_app.command("list")
def period_list_cmd(db: Db = None, json_: Json = False) -> None:
    """Closed-through date per entity, and the close/reopen history."""
    data = reports.period_list(_workspace(db))
    if json_:
        emit_json(data)
        return
    table = Table("entity", "closed through")
    for e in data["entities"]:
        table.add_row(e["entity"], e["closed_through"] or "(open)")
    out.print(table)
    for h in data["history"]:
        out.print(f"  {h['at'][:19]} {h['actor']} {h['action']} {h['entity']} through "
                  f"{h['through']}: {h['reason']}")


# -- scenarios -----------------------------------------------------------------------------------------

@scenario_app.command("run")
def scenario_run(files: Annotated[list[str], typer.Argument(help="Scenario YAML files.")],
                 db_server: Annotated[Optional[str], typer.Option(
                     "--db-server", help="Run on a temporary database of this PostgreSQL "
                                         "server instead of a temporary SQLite file.")] = None,
                 json_: Json = False) -> None:
    """Run scenario files in throw-away workspaces; exit 0 only if all pass."""
    from stockledger.service.scenario import run_file

    results = [run_file(path, db_server) for path in files]
    if json_:
        emit_json([{"file": r.file, "name": r.name, "passed": r.passed, "failure": r.failure}
                   for r in results])
    else:
        for r in results:
            out.print(f"{'pass' if r.passed else 'FAIL'}  {r.file}"
                      + ("" if r.passed else f"\n      {r.failure}"))
        passed = sum(r.passed for r in results)
        out.print(f"{passed} of {len(results)} passed")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


# -- benchmarks ----------------------------------------------------------------------------------------

@bench_app.command("post")
def bench_post(events: Annotated[int, typer.Option("--events")] = 100_000,
               db: Db = None, json_: Json = False,
               keep: Annotated[bool, typer.Option("--keep", help=(
                   "Keep the workspace (with --db) instead of starting from a fresh one."))] = False,
               seed: Annotated[int, typer.Option("--seed")] = 1,
               mix: Annotated[str, typer.Option("--mix", help=(
                   "full: with kits, production orders and landed costs; core: without."))]
               = "full") -> None:
    """Generate a realistic stream and post it into a fresh workspace."""
    from stockledger.service.bench import MIXES, bench_post as run

    if mix not in MIXES:
        raise UserError(f"--mix must be one of {', '.join(MIXES)}, got {mix!r}")
    result = run(events, db, seed=seed, keep=keep, progress=not json_ and sys.stderr.isatty(),
                 mix=mix)
    if json_:
        emit_json(result)
    else:
        for key, value in result.items():
            out.print(f"{key:>24}: {value}")


@bench_app.command("backdate")
def bench_backdate(history: Annotated[int, typer.Option("--history")] = 10_000,
                   db: Db = None, json_: Json = False) -> None:
    """Re-cost one SKU's history after a receipt backdated before all of it."""
    from stockledger.service.bench import bench_backdate as run

    result = run(history, db, progress=not json_ and sys.stderr.isatty())
    if json_:
        emit_json(result)
    else:
        for key, value in result.items():
            out.print(f"{key:>22}: {value}")


# -- commands defined in their own modules (they register on the apps above) ----------------------------
from stockledger.cli import close_reports as _close_reports  # noqa: E402,F401
from stockledger.cli import exports as _exports  # noqa: E402,F401


# -- entry point -------------------------------------------------------------------------------------------

def main() -> None:
    try:
        app(prog_name="stockledger")
    except SetupError as exc:
        err.print(f"error: invalid setup ({len(exc.problems)} problem(s)):")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        sys.exit(1)
    except UserError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
    except (OperationalError, DatabaseError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err.print(f"error: database: {reason}")
        sys.exit(2)
    except (NoSuchModuleError, ArgumentError) as exc:
        err.print(f"error: not a database URL stockledger can use ({exc}); give a SQLite file "
                  f"path or a postgresql+psycopg:// URL")
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
