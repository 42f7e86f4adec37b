"""The audit side: the hash chain's verification, and manual journal entries.

Manual entries are the only journal lines no inventory event produced. They
are posted like events (idempotent on source "manual" and their id, dated,
balanced, refused in closed periods) with a reason; posting by hand to an
account that a role maps as inventory, GRNI or GSNI is refused unless the
user says so explicitly (with a reason), and reconciliation always lists
such lines as the explanation of a difference.
"""

from __future__ import annotations

import datetime as dt
from decimal import InvalidOperation
from typing import Any

import orjson
import yaml
from sqlalchemy import select

from stockledger.adapters.db import schema as s
from stockledger.adapters.db import store
from stockledger.domain.chain import GENESIS, entry_hash
from stockledger.domain.events import ymd, ymd_text
from stockledger.domain.money import format_money, parse_money
from stockledger.domain.setup import Role
from stockledger.service.reports import role_accounts
from stockledger.service.workspace import UserError, Workspace, actor_name

MANUAL_SOURCE = "manual"
MANUAL_KIND = "manual_journal"
CONTROL_ROLES = (Role.INVENTORY, Role.GRNI, Role.GSNI)


def verify(ws: Workspace) -> dict[str, Any]:
    """Recompute the chain; name the first entry whose hash does not match."""
    ws.require()
    je, jl, ev = s.journal_entries, s.journal_lines, s.events
    checked = 0
    previous = GENESIS
    with ws.read() as conn:
        lines = conn.execution_options(yield_per=20_000).execute(
            select(jl.c.entry_id, jl.c.account_id, jl.c.amount_minor, jl.c.sku_id,
                   jl.c.location_id, jl.c.op_no).order_by(jl.c.entry_id, jl.c.id))
        entries = conn.execution_options(yield_per=20_000).execute(
            select(je.c.id, je.c.event_id, je.c.kind, je.c.entity_id, je.c.date_ymd,
                   je.c.cause_event_id, je.c.producer_event_id, je.c.chain_seq, je.c.hash)
            .order_by(je.c.chain_seq))
        pending = _grouped(lines)
        by_entry: dict[int, list[tuple]] = {}
        for row in entries:
            while row.id not in by_entry:
                chunk = next(pending, None)
                if chunk is None:
                    by_entry.setdefault(row.id, [])
                    break
                by_entry[chunk[0]] = chunk[1]
            own = by_entry.pop(row.id, [])
            expected = entry_hash(previous, (row.id, row.event_id, row.kind, row.entity_id,
                                             row.date_ymd, row.cause_event_id,
                                             row.producer_event_id), own)
            checked += 1
            if row.chain_seq != checked or expected != row.hash:
                event = conn.execute(select(ev.c.source, ev.c.ext_id)
                                     .where(ev.c.id == row.event_id)).first()
                reason = ("a gap or reordering in the chain" if row.chain_seq != checked else
                          "its content or its predecessor changed since it was written")
                return {"entries_checked": checked, "status": "broken",
                        "first_broken": {"entry": row.id, "chain_seq": row.chain_seq,
                                         "date": ymd_text(row.date_ymd), "kind": row.kind,
                                         "event": ({"source": event.source, "id": event.ext_id}
                                                   if event else None),
                                         "reason": reason}}
            previous = row.hash
        head_seq, head_hash = store.chain_head(conn)
    if head_seq != checked or (checked and head_hash != previous):
        return {"entries_checked": checked, "status": "broken",
                "first_broken": {"entry": None, "chain_seq": head_seq,
                                 "reason": "the chain's head does not match its last entry"}}
    return {"entries_checked": checked, "status": "intact", "first_broken": None}


def _grouped(rows: Any) -> Any:
    """(entry id, [(account, amount, sku, location, op), ...]) per entry, in order."""
    current: int | None = None
    lines: list[tuple] = []
    for row in rows:
        if row.entry_id != current:
            if current is not None:
                yield current, lines
            current, lines = row.entry_id, []
        lines.append((row.account_id, row.amount_minor, row.sku_id, row.location_id, row.op_no))
    if current is not None:
        yield current, lines


# -- manual journal entries --------------------------------------------------------------

def read_manual_entry(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a valid YAML or JSON journal entry: "
                        f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a journal entry is a mapping with id, date, entity, reason "
                        f"and lines")
    return data


def add_manual_entry(ws: Workspace, data: dict[str, Any], *, allow_control_account: bool = False,
                     control_reason: str | None = None) -> dict[str, Any]:
    """Post one balanced, dated, reasoned manual entry."""
    ws.require()
    problems: list[str] = []
    ext_id = str(data.get("id") or "")
    reason = str(data.get("reason") or "").strip()
    if not ext_id:
        problems.append("id is required (it makes re-sending the same entry harmless)")
    if not reason:
        problems.append("reason is required")
    try:
        day = data.get("date")
        date = ymd(day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)))
    except ValueError:
        problems.append(f"date must be YYYY-MM-DD, got {data.get('date')!r}")
        date = 0
    lines_in = data.get("lines")
    if not isinstance(lines_in, list) or len(lines_in) < 2:
        problems.append("lines: at least two lines, each {account, debit} or {account, credit}")
        lines_in = []
    with ws.write() as conn:
        setup = ws.setup(conn)
        entity_code = data.get("entity") or (next(iter(setup.entities)) if len(setup.entities) == 1
                                             else None)
        entity = setup.entities.get(str(entity_code)) if entity_code else None
        if entity is None:
            problems.append(f"entity {entity_code!r} is unknown" if entity_code
                            else "entity is required (the workspace has several)")
        control = set()
        for role in CONTROL_ROLES:
            control |= role_accounts(setup, role)
        lines: list[tuple[int, int, str]] = []
        for n, item in enumerate(lines_in, 1):
            if not isinstance(item, dict):
                problems.append(f"line {n}: expected a mapping")
                continue
            account = setup.accounts.get(str(item.get("account")))
            if account is None:
                problems.append(f"line {n}: unknown account {item.get('account')!r}")
                continue
            sides = [k for k in ("debit", "credit") if item.get(k) not in (None, "")]
            if len(sides) != 1:
                problems.append(f"line {n}: give exactly one of debit or credit")
                continue
            try:
                amount = parse_money(str(item[sides[0]]), entity.exp if entity else 2)
            except (ValueError, InvalidOperation):
                problems.append(f"line {n}: {sides[0]} {item[sides[0]]!r} is not an amount")
                continue
            if amount <= 0:
                problems.append(f"line {n}: amounts are positive (use the other side)")
                continue
            lines.append((account.id, amount if sides[0] == "debit" else -amount, account.code))
        if lines and sum(amount for _, amount, _ in lines):
            total = sum(amount for _, amount, _ in lines)
            problems.append(f"the entry does not balance: debits exceed credits by "
                            f"{format_money(total, entity.exp if entity else 2)}")
        touched = sorted({code for account_id, _, code in lines if account_id in control})
        if touched and not allow_control_account:
            problems.append(f"accounts {', '.join(touched)} are controlled by the subledger "
                            f"(inventory, GRNI or GSNI): posting to them by hand needs "
                            f"--allow-control-account with --reason")
        if touched and allow_control_account and not (control_reason or "").strip():
            problems.append("--allow-control-account needs --reason")
        closed = store.closed_periods(conn)
        if entity is not None and entity.id in closed and date <= closed[entity.id]:
            problems.append(f"dated {ymd_text(date)}: {entity.code} is closed through "
                            f"{ymd_text(closed[entity.id])} (PERIOD_CLOSED)")
        if problems:
            raise UserError("the journal entry was not posted: " + "; ".join(problems))
        assert entity is not None
        payload = orjson.dumps({"id": ext_id, "date": ymd_text(date), "entity": entity.code,
                                "reason": reason, "control_reason": control_reason,
                                "lines": [[code, amount] for _, amount, code in lines]},
                               option=orjson.OPT_SORT_KEYS).decode()
        from stockledger.adapters.formats.requests import content_hash, first_difference

        digest = content_hash(payload.encode())
        existing = store.events_by_keys(conn, [(MANUAL_SOURCE, ext_id)]).get(
            (MANUAL_SOURCE, ext_id))
        if existing is not None:
            if existing.content_hash == digest:
                return {"status": "duplicate", "id": ext_id}
            raise UserError(f"manual entry {ext_id!r} was already posted with other content "
                            f"(first difference: {first_difference(orjson.loads(existing.payload), orjson.loads(payload))})")
        event_id = store.allocate_ids(conn, s.events, 1)[0]
        entry_id = store.allocate_ids(conn, s.journal_entries, 1)[0]
        batch_id = store.allocate_ids(conn, s.batches, 1)[0]
        conn.execute(s.batches.insert(), [{"id": batch_id, "committed_at": store.now_text(),
                                           "actor": actor_name(), "origin": "journal add"}])
        conn.execute(s.events.insert(), [{
            "id": event_id, "source": MANUAL_SOURCE, "ext_id": ext_id, "kind": MANUAL_KIND,
            "date_ymd": date, "entity_id": entity.id, "ref_event_id": None, "order_ref": None,
            "config_version": setup.version, "content_hash": digest, "payload": payload,
            "batch_id": batch_id}])
        seq, previous = store.chain_head(conn, lock=True)
        entry = (entry_id, event_id, "manual", entity.id, date, event_id, event_id)
        rows = [(event_id, event_id, date, entity.id, account_id, amount, None, None, None,
                 entry_id) for account_id, amount, _ in lines]
        digest_chain = entry_hash(previous, entry, [(r[4], r[5], r[6], r[7], r[8]) for r in rows])
        store.insert_rows(conn, s.journal_entries, ("id", "event_id", "kind", "entity_id",
                                                    "date_ymd", "cause_event_id",
                                                    "producer_event_id", "chain_seq", "hash"),
                          [entry + (seq + 1, digest_chain)])
        store.insert_rows(conn, s.journal_lines, ("event_id", "producer_event_id", "date_ymd",
                                                  "entity_id", "account_id", "amount_minor",
                                                  "sku_id", "location_id", "op_no", "entry_id"),
                          rows)
        store.set_chain_head(conn, seq + 1, digest_chain)
    return {"status": "posted", "id": ext_id, "entry": entry_id,
            "control_accounts": touched}

