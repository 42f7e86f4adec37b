"""Exports of the general ledger for other tools and for auditors:

- ``beancount``: the GL as a beancount ledger (accounts opened, one
  transaction per journal entry with its event in the metadata, balance
  assertions equal to our trial balance), so ``bean-check`` verifies it;
- ``journal_csv``: one row per journal line with its entry, event, account,
  side, SKU, location and memo;
- ``audit``: events, movements, entries and lines of a period as CSV files
  that join on their ids, with a manifest (columns, row counts, file hashes,
  control totals and the hash chain's last entry).

Every export streams: rows come from the database in chunks
(``yield_per``) ordered by an index, and are written as they arrive, so a
ledger of millions of lines is exported in bounded memory. The columns are
documented in docs/exports.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Connection, and_, case, func, select, union

from stockledger.adapters.db import schema as s
from stockledger.adapters.db import store
from stockledger.domain.evaluate import Op
from stockledger.domain.events import from_ymd, ymd, ymd_text
from stockledger.domain.money import format_money, format_qty
from stockledger.domain.setup import Account, Setup
from stockledger.service import reports
from stockledger.service.audit import MANUAL_KIND
from stockledger.service.kpis import entity_filter, period_filter
from stockledger.service.workspace import UserError, Workspace

EXPORT_FETCH_ROWS_MAX = 20_000  # rows fetched from the database at a time while streaming
HASH_CHUNK_BYTES = 1 << 20

BEANCOUNT_ROOTS = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity",
                   "income": "Income", "expense": "Expenses"}
_WORD = re.compile(r"[A-Za-z0-9]+")
MEMO_KINDS = ("adjustment", MANUAL_KIND, "reversal")  # events whose payload holds the memo

JOURNAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entry_id", "journal entry id (the entries.csv / `journal` entry number)"),
    ("date", "the entry's accounting date, YYYY-MM-DD"),
    ("kind", "post, recost, reversal or manual"),
    ("event_source", "source of the event the entry belongs to (`manual` for manual entries)"),
    ("event_ext_id", "the sender's id of that event (with event_source: the idempotency key)"),
    ("event_type", "receipt, shipment, ..., reversal, manual_journal"),
    ("entity", "legal entity code"),
    ("account_code", "account code"),
    ("account_name", "account name"),
    ("debit", "debit amount, exact currency decimals (0.00 on a credit line)"),
    ("credit", "credit amount, exact currency decimals (0.00 on a debit line)"),
    ("currency", "the entity's currency"),
    ("sku", "SKU of the line, empty for amounts that belong to no SKU"),
    ("location", "location of the line, empty when none"),
    ("memo", "reason of an adjustment or manual entry; for a recost the event that caused it; "
             "for a reversal the event it reverses"),
)

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "internal event id (arrival order); entries, lines and movements refer to it"),
    ("source", "sending system"),
    ("ext_id", "the sender's id (with source: the idempotency key)"),
    ("type", "event type"),
    ("date", "effective date, YYYY-MM-DD"),
    ("entity", "legal entity code"),
    ("ref_event_id", "event_id of the event this one refers to (ref), empty when none"),
    ("order_ref", "production order, empty when none"),
    ("reversed_by_event_id", "event_id of the reversal that cancelled this event, if any"),
    ("reversed_at", "when that reversal was made (UTC)"),
    ("config_version", "setup version the event was resolved with"),
    ("batch_id", "posting batch (one transaction)"),
    ("content_hash", "hash of the canonical content (idempotency)"),
    ("payload", "the event as received, canonical JSON"),
)

ENTRY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entry_id", "journal entry id"),
    ("event_id", "the event the entry belongs to (events.csv)"),
    ("kind", "post, recost, reversal or manual"),
    ("entity", "legal entity code"),
    ("date", "accounting date, YYYY-MM-DD"),
    ("cause_event_id", "the event that made it (itself for a post; the backdated or "
                       "reversing event for a recost or reversal)"),
    ("producer_event_id", "the event whose evaluation computed it"),
    ("chain_seq", "position in the tamper-evident hash chain"),
    ("hash", "hash over the entry's content, its lines and its predecessor's hash"),
)

LINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("line_id", "journal line id"),
    ("entry_id", "its entry (entries.csv)"),
    ("event_id", "the event it belongs to (events.csv)"),
    ("producer_event_id", "the event whose evaluation computed it"),
    ("op_no", "the stock operation it values: joins movements.csv on (event_id, op_no); "
              "empty for fixed amounts (AP, AR, revenue)"),
    ("entity", "legal entity code"),
    ("date", "accounting date, YYYY-MM-DD"),
    ("account_code", "account code"),
    ("account_name", "account name"),
    ("account_type", "asset, liability, equity, income or expense"),
    ("debit", "debit amount (0.00 on a credit line)"),
    ("credit", "credit amount (0.00 on a debit line)"),
    ("amount", "signed amount, debit positive"),
    ("currency", "the entity's currency"),
    ("sku", "SKU, empty when none"),
    ("location", "location, empty when none"),
)

MOVEMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("movement_id", "subledger movement id"),
    ("event_id", "the event it belongs to (events.csv)"),
    ("op_no", "operation number within the event; lines.csv rows with the same "
              "(event_id, op_no) post its value"),
    ("producer_event_id", "the event whose evaluation computed it"),
    ("kind", "post, recost or reversal"),
    ("op", "in, out, value, count, standard or revalue"),
    ("date", "date, YYYY-MM-DD"),
    ("entity", "legal entity code"),
    ("sku", "SKU"),
    ("location", "location"),
    ("account_code", "inventory account the value sits in"),
    ("counter_account_code", "the other side of its journal lines, when one"),
    ("qty", "quantity in the SKU's base unit, signed (in positive, out negative)"),
    ("value", "value, signed, exact currency decimals"),
    ("currency", "the entity's currency"),
    ("lot", "lot, empty when none"),
    ("param_qty", "count: the counted quantity; standard or revalue: the quantity the new "
                  "unit cost is expressed for (unit cost = param_value / param_qty)"),
    ("param_value", "standard or revalue: the value of param_qty at the new unit cost"),
)

OP_NAMES = {int(op): op.name.lower() for op in Op}


# -- small helpers ------------------------------------------------------------------------

def _stream(conn: Connection, query: Any) -> Iterator[Any]:
    return conn.execution_options(yield_per=EXPORT_FETCH_ROWS_MAX).execute(query)


@contextmanager
def _open_out(path: Path) -> Iterator[IO[str]]:
    """A text file written next to its final name and moved there when complete."""
    if path.is_dir():
        raise UserError(f"--out {str(path)!r} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Names:
    """Codes by id for the current setup, remembered (rows repeat them)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.skus: dict[int | None, str] = {None: ""}
        self.locations: dict[int | None, str] = {None: ""}

    def sku(self, sku_id: int | None) -> str:
        name = self.skus.get(sku_id)
        if name is None:
            name = self.skus[sku_id] = self.setup.product_by_id(sku_id).sku  # type: ignore[arg-type]
        return name

    def location(self, location_id: int | None) -> str:
        name = self.locations.get(location_id)
        if name is None:
            name = self.locations[location_id] = \
                self.setup.location_by_id(location_id).code  # type: ignore[arg-type]
        return name


def _memo(entry_kind: str, event_kind: str, payload: str | None, cause: Any) -> str:
    if entry_kind == "recost" and cause is not None and cause[1] is not None:
        return f"caused by {cause[2]} {cause[0]}/{cause[1]}"
    if not payload:
        return ""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    if event_kind == "reversal":
        ref = doc.get("ref")
        return f"reversal of {doc.get('ref_source') or doc.get('source', 'default')}/{ref}" \
            if ref else ""
    return str(doc.get("reason") or "")


def _lines_query(entity: Any, start: int | None, end: int | None) -> Any:
    """Journal lines with their entry, event and (for a recost) its cause, in
    (entry, line) order."""
    jl, je, ev = s.journal_lines, s.journal_entries, s.events
    cause = s.events.alias("cause")
    return (select(jl.c.id, jl.c.entry_id, je.c.date_ymd, je.c.kind, ev.c.source, ev.c.ext_id,
                   ev.c.kind.label("event_kind"), ev.c.id.label("event_row"), jl.c.entity_id,
                   jl.c.account_id, jl.c.amount_minor, jl.c.sku_id, jl.c.location_id,
                   case((ev.c.kind.in_(MEMO_KINDS), ev.c.payload), else_=None).label("payload"),
                   cause.c.source.label("cause_source"), cause.c.ext_id.label("cause_ext_id"),
                   cause.c.kind.label("cause_kind"))
            .select_from(jl.join(je, je.c.id == jl.c.entry_id)
                         .join(ev, ev.c.id == je.c.event_id)
                         .outerjoin(cause, and_(cause.c.id == je.c.cause_event_id,
                                                je.c.kind == "recost")))
            .where(*entity_filter(jl, entity), *period_filter(jl, start, end))
            .order_by(jl.c.entry_id, jl.c.id))


def _cause(row: Any) -> tuple[str, str, str] | None:
    return (row.cause_source, row.cause_ext_id, row.cause_kind) if row.cause_ext_id else None


# -- journal CSV ---------------------------------------------------------------------------

def journal_csv(ws: Workspace, out: str, entity_code: str | None = None,
                period: tuple[int, int] | None = None, as_of: int | None = None) -> dict[str, Any]:
    """One row per journal line (columns: JOURNAL_COLUMNS), in entry order."""
    if period is not None and as_of is not None:
        raise UserError("give either --period or --as-of, not both")
    ws.require()
    start, end = period if period is not None else (None, as_of)
    path = Path(out)
    rows = 0
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        names = _Names(setup)
        with _open_out(path) as handle:
            writer = csv.writer(handle)
            writer.writerow([name for name, _ in JOURNAL_COLUMNS])
            for row in _stream(conn, _lines_query(entity, start, end)):
                account = setup.account_by_id(row.account_id)
                owner = setup.entity_by_id(row.entity_id)
                amount = row.amount_minor
                writer.writerow((
                    row.entry_id, ymd_text(row.date_ymd), row.kind, row.source, row.ext_id,
                    row.event_kind, owner.code, account.code, account.name,
                    format_money(max(amount, 0), owner.exp),
                    format_money(max(-amount, 0), owner.exp), owner.currency,
                    names.sku(row.sku_id), names.location(row.location_id),
                    _memo(row.kind, row.event_kind, row.payload, _cause(row))))
                rows += 1
    return {"out": str(path), "rows": rows, "entity": entity.code if entity else None,
            "from": ymd_text(start) if start else None, "to": ymd_text(end) if end else None}


# -- beancount ---------------------------------------------------------------------------------

def _component(text: str) -> str:
    """Free text -> one beancount account component: ASCII words, each starting
    with a capital or a digit, joined by '-' ("Inventory - raw materials" ->
    "Inventory-Raw-Materials")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _WORD.findall(ascii_text)
    return "-".join(word[0].upper() + word[1:] for word in words)


def beancount_accounts(setup: Setup) -> dict[str, str]:
    """Our account code -> its beancount account name: the root by account type
    (asset -> Assets, liability -> Liabilities, equity -> Equity, income ->
    Income, expense -> Expenses), then one component "<code>-<Name>"
    (decision 0013); a clash after cleaning gets a numeric suffix."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for account in sorted(setup.accounts.values(), key=lambda a: a.code):
        component = _component(f"{account.code} {account.name}") or "Account"
        name = f"{BEANCOUNT_ROOTS[account.type]}:{component}"
        candidate, n = name, 2
        while candidate.casefold() in used:
            candidate, n = f"{name}-{n}", n + 1
        used.add(candidate.casefold())
        names[account.code] = candidate
    return names


def _bean_str(text: str) -> str:
    """A beancount string literal."""
    clean = " ".join(str(text).split())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _next_day(date: int) -> int:
    return ymd(from_ymd(date) + dt.timedelta(days=1))


def beancount(ws: Workspace, out: str, entity_code: str | None = None,
              as_of: int | None = None) -> dict[str, Any]:
    """The GL (as of a date) as a beancount ledger that bean-check accepts."""
    ws.require()
    jl = s.journal_lines
    path = Path(out)
    entries = lines = 0
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        names = beancount_accounts(setup)
        used = conn.execute(select(jl.c.account_id, func.min(jl.c.date_ymd),
                                   func.max(jl.c.date_ymd), func.sum(jl.c.amount_minor))
                            .where(*entity_filter(jl, entity), *period_filter(jl, None, as_of))
                            .group_by(jl.c.account_id)).all()
        currencies = sorted({e.currency for e in setup.entities.values()
                             if entity is None or e.id == entity.id})
        exp = reports._exp(setup, entity)
        last = max((int(r[2]) for r in used), default=None)
        item_names = _Names(setup)
        with _open_out(path) as handle:
            write = handle.write
            scope = entity.code if entity else ", ".join(setup.entities)
            write(f"; stockledger general ledger, entity {scope}"
                  f"{', as of ' + ymd_text(as_of) if as_of else ''}\n"
                  f"; one transaction per journal entry; the metadata links it to its event.\n"
                  f"; account names: <Type>:<code>-<Name> (docs/exports.md)\n\n")
            write(f"option \"title\" {_bean_str('stockledger ' + scope)}\n")
            for currency in currencies:
                write(f"option \"operating_currency\" \"{currency}\"\n")
            write("\n")
            for account_id, first, _, _ in sorted(
                    used, key=lambda r: setup.account_by_id(r[0]).code):
                account = setup.account_by_id(account_id)
                write(f"{ymd_text(int(first))} open {names[account.code]} "
                      f"{','.join(currencies)}\n"
                      f"  name: {_bean_str(account.name)}\n"
                      f"  code: {_bean_str(account.code)}\n")
            rows = _stream(conn, _lines_query(entity, None, as_of))
            for entry_id, group in itertools.groupby(rows, key=lambda r: r.entry_id):
                group = list(group)
                head = group[0]
                entries += 1
                lines += len(group)
                _write_transaction(write, setup, names, item_names, entry_id, head, group)
            if last is not None:
                check = _next_day(as_of if as_of is not None and as_of >= last else last)
                write(f"\n; balances equal to `stockledger report trial-balance"
                      f"{' --as-of ' + ymd_text(as_of) if as_of else ''}`\n")
                for account_id, _, _, balance in sorted(
                        used, key=lambda r: setup.account_by_id(r[0]).code):
                    account = setup.account_by_id(account_id)
                    # "~ 0.00": exact (beancount's default tolerance would pass a cent off)
                    write(f"{ymd_text(check)} balance {names[account.code]} "
                          f"{format_money(int(balance or 0), exp)} ~ {format_money(0, exp)} "
                          f"{currencies[0]}\n")
    return {"out": str(path), "entries": entries, "lines": lines, "accounts": len(used),
            "entity": entity.code if entity else None,
            "as_of": ymd_text(as_of) if as_of else None}


def _write_transaction(write: Any, setup: Setup, names: dict[str, str], item_names: _Names,
                       entry_id: int, head: Any, group: list[Any]) -> None:
    owner = setup.entity_by_id(head.entity_id)
    narration = f"{head.kind} {head.event_kind} {head.source}/{head.ext_id}"
    memo = _memo(head.kind, head.event_kind, head.payload, _cause(head))
    if memo:
        narration += f": {memo}"
    write(f"\n{ymd_text(head.date_ymd)} * {_bean_str(narration)} ^event-{head.event_row}\n"
          f"  entry_id: \"{entry_id}\"\n"
          f"  entry_kind: \"{head.kind}\"\n"
          f"  event_source: {_bean_str(head.source)}\n"
          f"  event_ext_id: {_bean_str(head.ext_id)}\n"
          f"  event_type: \"{head.event_kind}\"\n"
          f"  entity: {_bean_str(owner.code)}\n")
    if memo:
        write(f"  memo: {_bean_str(memo)}\n")
    for row in group:
        account: Account = setup.account_by_id(row.account_id)
        write(f"  {names[account.code]}  {format_money(row.amount_minor, owner.exp)} "
              f"{owner.currency}\n")
        if row.sku_id is not None:
            write(f"    sku: {_bean_str(item_names.sku(row.sku_id))}\n")
        if row.location_id is not None:
            write(f"    location: {_bean_str(item_names.location(row.location_id))}\n")


# -- audit package -----------------------------------------------------------------------------

def audit(ws: Workspace, period: tuple[int, int], out_dir: str,
          entity_code: str | None = None) -> dict[str, Any]:
    """events.csv, movements.csv, entries.csv, lines.csv of a period, with
    manifest.json and README.txt; entries, lines and movements by their date,
    events as referenced by them (and the events those refer to)."""
    ws.require()
    start, end = period
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {out_dir!r} exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    je, jl, m, ev, rv = (s.journal_entries, s.journal_lines, s.movements, s.events,
                         s.reversals)
    files: dict[str, dict[str, Any]] = {}
    with ws.read() as conn:
        setup = ws.setup(conn)
        entity = reports._entity(setup, entity_code)
        names = _Names(setup)
        in_entries = [*entity_filter(je, entity), *period_filter(je, start, end)]
        in_lines = [*entity_filter(jl, entity), *period_filter(jl, start, end)]
        in_moves = [*entity_filter(m, entity), *period_filter(m, start, end)]

        # entries
        last_entry: dict[str, Any] | None = None
        with _csv(folder, "entries.csv", ENTRY_COLUMNS, files) as writer:
            for row in _stream(conn, select(je).where(*in_entries).order_by(je.c.id)):
                writer.writerow((row.id, row.event_id, row.kind,
                                 setup.entity_by_id(row.entity_id).code, ymd_text(row.date_ymd),
                                 row.cause_event_id, row.producer_event_id, row.chain_seq,
                                 row.hash))
                files["entries.csv"]["rows"] += 1
                if last_entry is None or row.chain_seq > last_entry["chain_seq"]:
                    last_entry = {"entry_id": row.id, "chain_seq": row.chain_seq,
                                  "date": ymd_text(row.date_ymd), "hash": row.hash}

        # lines, with control totals per currency
        totals: dict[str, list[int]] = {}
        with _csv(folder, "lines.csv", LINE_COLUMNS, files) as writer:
            for row in _stream(conn, select(jl).where(*in_lines)
                               .order_by(jl.c.entry_id, jl.c.id)):
                account = setup.account_by_id(row.account_id)
                owner = setup.entity_by_id(row.entity_id)
                amount = row.amount_minor
                writer.writerow((row.id, row.entry_id, row.event_id, row.producer_event_id,
                                 "" if row.op_no is None else row.op_no, owner.code,
                                 ymd_text(row.date_ymd), account.code, account.name,
                                 account.type, format_money(max(amount, 0), owner.exp),
                                 format_money(max(-amount, 0), owner.exp),
                                 format_money(amount, owner.exp), owner.currency,
                                 names.sku(row.sku_id), names.location(row.location_id)))
                files["lines.csv"]["rows"] += 1
                total = totals.setdefault(owner.currency, [0, 0, owner.exp])
                total[0 if amount > 0 else 1] += abs(amount)

        # movements
        with _csv(folder, "movements.csv", MOVEMENT_COLUMNS, files) as writer:
            for row in _stream(conn, select(m).where(*in_moves).order_by(m.c.id)):
                owner = setup.entity_by_id(row.entity_id)
                counter = (setup.account_by_id(row.counter_account_id).code
                           if row.counter_account_id is not None else "")
                writer.writerow((
                    row.id, row.event_id, row.op_no, row.producer_event_id, row.kind,
                    OP_NAMES.get(row.op, str(row.op)), ymd_text(row.date_ymd), owner.code,
                    names.sku(row.sku_id), names.location(row.location_id),
                    setup.account_by_id(row.account_id).code, counter,
                    format_qty(row.qty_micro), format_money(row.value_minor, owner.exp),
                    owner.currency, row.lot or "",
                    "" if row.param_qty_micro is None else format_qty(row.param_qty_micro),
                    "" if row.param_value_minor is None
                    else format_money(row.param_value_minor, owner.exp)))
                files["movements.csv"]["rows"] += 1

        # events referenced by the rows above, and the events those refer to
        referenced = union(
            select(je.c.event_id.label("id")).where(*in_entries),
            select(je.c.cause_event_id).where(*in_entries),
            select(je.c.producer_event_id).where(*in_entries),
            select(jl.c.event_id).where(*in_lines),
            select(jl.c.producer_event_id).where(*in_lines),
            select(m.c.event_id).where(*in_moves),
            select(m.c.producer_event_id).where(*in_moves),
        ).subquery()
        ids = select(referenced.c.id)
        refs = select(ev.c.ref_event_id).where(ev.c.id.in_(ids), ev.c.ref_event_id.is_not(None))
        query = (select(ev, rv.c.reversal_event_id, rv.c.reversed_at)
                 .select_from(ev.outerjoin(rv, rv.c.event_id == ev.c.id))
                 .where(ev.c.id.in_(ids) | ev.c.id.in_(refs)).order_by(ev.c.id))
        with _csv(folder, "events.csv", EVENT_COLUMNS, files) as writer:
            for row in _stream(conn, query):
                writer.writerow((row.id, row.source, row.ext_id, row.kind, ymd_text(row.date_ymd),
                                 setup.entity_by_id(row.entity_id).code,
                                 "" if row.ref_event_id is None else row.ref_event_id,
                                 row.order_ref or "",
                                 "" if row.reversal_event_id is None else row.reversal_event_id,
                                 row.reversed_at or "", row.config_version, row.batch_id,
                                 row.content_hash, row.payload))
                files["events.csv"]["rows"] += 1
        head_seq, head_hash = _chain_head(conn)

    for name, info in files.items():
        info["sha256"] = _sha256(folder / name)
    manifest = {
        "format": "stockledger-audit-1",
        "generated_at": store.now_text(),
        "period": {"from": ymd_text(start), "to": ymd_text(end)},
        "entity": entity.code if entity else None,
        "selection": ("entries, lines and movements dated in the period; the events they "
                      "belong to, were caused or computed by, and the events those refer to"),
        "files": {name: files[name] for name in ("events.csv", "entries.csv", "lines.csv",
                                                 "movements.csv")},
        "joins": [
            "entries.csv event_id, cause_event_id, producer_event_id -> events.csv event_id",
            "lines.csv entry_id -> entries.csv entry_id",
            "lines.csv event_id, producer_event_id -> events.csv event_id",
            "lines.csv (event_id, op_no) -> movements.csv (event_id, op_no)",
            "movements.csv event_id, producer_event_id -> events.csv event_id",
            "events.csv ref_event_id, reversed_by_event_id -> events.csv event_id",
        ],
        "control_totals": {currency: {"debit": format_money(debit, exp),
                                      "credit": format_money(credit, exp)}
                           for currency, (debit, credit, exp) in sorted(totals.items())},
        "last_entry": last_entry,
        "chain_head": {"chain_seq": head_seq, "hash": head_hash},
    }
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
                                           + b"\n")
    (folder / "README.txt").write_text(_readme(manifest), encoding="utf-8")
    return {"out": str(folder), "files": {name: info["rows"] for name, info in files.items()},
            "last_entry": last_entry}


@contextmanager
def _csv(folder: Path, name: str, columns: tuple[tuple[str, str], ...],
         files: dict[str, dict[str, Any]]) -> Iterator[Any]:
    files[name] = {"rows": 0, "columns": [{"name": n, "description": d} for n, d in columns]}
    with _open_out(folder / name) as handle:
        writer = csv.writer(handle)
        writer.writerow([n for n, _ in columns])
        yield writer


def _chain_head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(s.chain_head.c.chain_seq, s.chain_head.c.hash)
                       .where(s.chain_head.c.id == 1)).first()
    if row is None:
        from stockledger.domain.chain import GENESIS

        return 0, GENESIS
    return int(row[0]), row[1]


def _readme(manifest: dict[str, Any]) -> str:
    out = [f"stockledger audit export, period {manifest['period']['from']} to "
           f"{manifest['period']['to']}"
           + (f", entity {manifest['entity']}" if manifest["entity"] else ""),
           f"generated {manifest['generated_at']}", "",
           f"Selection: {manifest['selection']}.", "",
           "Joins:"] + [f"  {j}" for j in manifest["joins"]] + [""]
    for name, info in manifest["files"].items():
        out.append(f"{name}: {info['rows']} rows, sha256 {info['sha256']}")
        out.extend(f"  {c['name']}: {c['description']}" for c in info["columns"])
        out.append("")
    for currency, total in manifest["control_totals"].items():
        out.append(f"Control totals ({currency}): debit {total['debit']}, "
                   f"credit {total['credit']}")
    last = manifest["last_entry"]
    if last:
        out.append(f"Last entry of the period in the hash chain: entry {last['entry_id']}, "
                   f"chain position {last['chain_seq']}, hash {last['hash']}")
    head = manifest["chain_head"]
    out.append(f"Chain head when exported: position {head['chain_seq']}, hash {head['hash']}")
    out.append("Check the chain with `stockledger verify`.")
    return "\n".join(out) + "\n"


def column_docs() -> dict[str, tuple[tuple[str, str], ...]]:
    """Every export's columns (for docs and tests)."""
    return {"journal-csv": JOURNAL_COLUMNS, "events.csv": EVENT_COLUMNS,
            "entries.csv": ENTRY_COLUMNS, "lines.csv": LINE_COLUMNS,
            "movements.csv": MOVEMENT_COLUMNS}


__all__ = ["journal_csv", "beancount", "audit", "beancount_accounts", "column_docs"]
