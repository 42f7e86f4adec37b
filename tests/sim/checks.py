"""The simulator's harness: throw-away workspaces, posting a stream chunk by
chunk, and the invariants checked against the database after every chunk.

Each check raises an AssertionError that says which invariant broke, where,
and with which figures; the test prints the stream (JSON lines) beside it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from stockledger.adapters.db import schema as s
from stockledger.limits import SLICE_EVENTS_MAX
from stockledger.service import reports
from stockledger.service.ingest import ItemResult, parse_lines, post_events
from stockledger.service.scenario import temporary_database
from stockledger.service.workspace import Workspace, check_setup, init_workspace
from tests.conftest import pg_url
from tests.sim import auditor
from tests.sim.streams import Ev, Stream, day, setup_document

_SETUPS: dict[str, Any] = {policy: check_setup(setup_document(policy))
                           for policy in ("reject", "allow")}
_TEMPLATES: dict[str, Any] = {}  # an initialised SQLite workspace per setup and process


def register_setup(name: str, doc: dict[str, Any]) -> None:
    """Another setup, for fresh_workspace(backend, name) (the complex streams' one)."""
    if name not in _SETUPS:
        _SETUPS[name] = check_setup(doc)


def _sqlite_template(policy: str) -> str:
    if policy not in _TEMPLATES:
        folder = tempfile.TemporaryDirectory(prefix="stockledger-sim-template-")
        path = os.path.join(folder.name, "template.db")
        with Workspace(f"sqlite:///{path}") as ws:
            init_workspace(ws, _SETUPS[policy])
        _TEMPLATES[policy] = (folder, path)
    return _TEMPLATES[policy][1]


@contextmanager
def fresh_workspace(backend: str, policy: str = "reject") -> Iterator[Workspace]:
    """A new, initialised workspace on `backend` (one per Hypothesis example), with
    the simple streams' setup under negative_stock `policy` (or a registered setup
    of that name). SQLite: a copy of a template initialised once (SQLite's backup API)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stockledger-sim-") as folder:
            path = os.path.join(folder, f"{uuid.uuid4().hex}.db")
            source, target = sqlite3.connect(_sqlite_template(policy)), sqlite3.connect(path)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
            ws = Workspace(f"sqlite:///{path}")
            try:
                yield ws
            finally:
                ws.close()
        return
    with temporary_database(pg_url(), prefix="stockledger_sim") as url:  # type: ignore[arg-type]
        ws = Workspace(url)
        try:
            init_workspace(ws, _SETUPS[policy])
            yield ws
        finally:
            ws.close()


def post_chunk(ws: Workspace, chunk: list[Ev], slice_size: int = SLICE_EVENTS_MAX
               ) -> dict[str, ItemResult]:
    """Post events in one call; every event gets exactly one result."""
    if not chunk:
        return {}
    summary = post_events(ws, parse_lines([e.line() for e in chunk]), keep_results=True,
                          slice_size=slice_size)
    results = {r.ext_id: r for r in summary.results}
    assert len(summary.results) == len(chunk) and set(results) == {e.id for e in chunk}, (
        f"post_events returned {len(summary.results)} results for {len(chunk)} events")
    return results


# -- reading the engine's figures -------------------------------------------------------------

def money(text: str) -> int:
    return int(Decimal(text) * 100)


def engine_valuation(ws: Workspace, as_of: int | None) -> dict[tuple[str, str], tuple[Decimal, int]]:
    report = reports.valuation(ws, as_of=as_of, entity_code="ACME")
    out = {}
    for line in report["lines"]:
        qty, value = Decimal(line["qty"]), money(line["value"])
        if qty or value:
            out[(line["sku"], line["location"])] = (qty, value)
    return out


def engine_trial_balance(ws: Workspace, as_of: int | None) -> tuple[dict[str, int], int, int]:
    report = reports.trial_balance(ws, as_of=as_of, entity_code="ACME")
    balances = {a["code"]: money(a["balance"]) for a in report["accounts"] if money(a["balance"])}
    return balances, money(report["total_debit"]), money(report["total_credit"])


class Reports:
    """The engine's reports, each fetched once per as-of date (between two posts)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._valuation: dict[int | None, dict] = {}
        self._trial_balance: dict[int | None, tuple[dict[str, int], int, int]] = {}

    def valuation(self, as_of: int | None) -> dict[tuple[str, str], tuple[Decimal, int]]:
        if as_of not in self._valuation:
            self._valuation[as_of] = engine_valuation(self.ws, as_of)
        return self._valuation[as_of]

    def trial_balance(self, as_of: int | None) -> tuple[dict[str, int], int, int]:
        if as_of not in self._trial_balance:
            self._trial_balance[as_of] = engine_trial_balance(self.ws, as_of)
        return self._trial_balance[as_of]


def show(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {d[k]}" for k in sorted(d, key=str)) + "}"


def diff(wanted: dict, got: dict) -> str:
    keys = sorted(set(wanted) | set(got), key=str)
    rows = [f"    {k}: auditor {wanted.get(k)}  engine {got.get(k)}"
            for k in keys if wanted.get(k) != got.get(k)]
    return "\n".join(rows)


# -- the invariants ------------------------------------------------------------------------------

def check_entries_balance(ws: Workspace) -> None:
    """(a) Every journal entry balances: its lines' amount_minor sum to zero, and
    every line belongs to an entry."""
    jl, je = s.journal_lines, s.journal_entries
    with ws.read() as conn:
        unbalanced = conn.execute(
            select(jl.c.entry_id, func.sum(jl.c.amount_minor))
            .group_by(jl.c.entry_id).having(func.sum(jl.c.amount_minor) != 0)).all()
        orphans = conn.execute(
            select(func.count()).select_from(jl).where(
                jl.c.entry_id.not_in(select(je.c.id)))).scalar()
    assert not unbalanced, f"(a) unbalanced journal entries (entry, off by minor units): {unbalanced}"
    assert not orphans, f"(a) {orphans} journal lines belong to no entry"


def check_conservation(rep: Reports) -> None:
    """(c) Per inventory account, the movements' values add up to its GL balance;
    total debit = total credit; the positions equal the movements."""
    m, jl = s.movements, s.journal_lines
    with rep.ws.read() as conn:
        setup = rep.ws.setup(conn)
        sub = {setup.account_by_id(a).code: int(v or 0) for a, v in conn.execute(
            select(m.c.account_id, func.sum(m.c.value_minor)).group_by(m.c.account_id))}
        gl = {setup.account_by_id(a).code: int(v or 0) for a, v in conn.execute(
            select(jl.c.account_id, func.sum(jl.c.amount_minor)).group_by(jl.c.account_id))}
        total = conn.execute(select(func.sum(jl.c.amount_minor))).scalar() or 0
    for account in auditor.INVENTORY_ACCOUNTS:
        assert sub.get(account, 0) == gl.get(account, 0), (
            f"(c) inventory account {account}: movements sum to {sub.get(account, 0)}, "
            f"GL balance is {gl.get(account, 0)} (minor units)")
    stray = set(sub) - set(auditor.INVENTORY_ACCOUNTS)
    assert not stray, f"(c) movements on non-inventory accounts {stray}"
    assert total == 0, f"(c) the journal lines sum to {total}, not 0"
    _, debit, credit = rep.trial_balance(None)
    assert debit == credit, f"(c) trial balance: total debit {debit} != total credit {credit}"
    positions = rep.valuation(None)
    history = rep.valuation(99991231)
    assert positions == history, (
        "(c) the positions (valuation as of now) differ from the sum of the movements:\n"
        + diff(history, positions))


def check_reconcile(rep: Reports, dates: list[int]) -> None:
    """(b) Subledger = GL for every inventory account as of every date (and now)."""
    for as_of in [*dates, None]:
        report = reports.reconcile(rep.ws, as_of=as_of, entity_code="ACME")
        assert report["status"] == "balanced", (
            f"(b) reconcile as of {day(as_of) if as_of else 'now'}: {report['accounts']}")
        _, debit, credit = rep.trial_balance(as_of)
        assert debit == credit, (
            f"(b) trial balance as of {day(as_of) if as_of else 'now'}: debit {debit} "
            f"!= credit {credit}")


def check_quantities(rep: Reports, posted: list[Ev], dates: list[int]) -> None:
    """(d) The valuation's quantities equal the naive count of the posted events."""
    for as_of in [*dates, None]:
        wanted = auditor.naive_quantities(posted, as_of)
        got = {k: q for k, (q, _) in rep.valuation(as_of).items() if q}
        assert got == wanted, (
            f"(d) quantities as of {day(as_of) if as_of else 'now'} differ from the naive "
            f"count of the posted events:\n{diff(wanted, got)}")


def check_against_auditor(rep: Reports, posted: list[Ev], dates: list[int],
                          skus: tuple[str, ...] | None = None, allow: bool = False) -> None:
    """(e) Values per SKU/location and the trial balance per account, as of every
    date, equal the auditor's books (recomputed from scratch in date order).
    With `skus`, only the valuation of those SKUs is compared (and no trial balance)."""
    try:
        books = auditor.audit(posted, allow)
    except auditor.Infeasible as exc:
        raise AssertionError(f"(e) the engine posted a history that is not valid: {exc}") from None
    for as_of in [*dates, None]:
        when = day(as_of) if as_of else "now"
        wanted = books.valuation(as_of)
        got = rep.valuation(as_of)
        if skus is not None:
            wanted = {k: v for k, v in wanted.items() if k[0] in skus}
            got = {k: v for k, v in got.items() if k[0] in skus}
        assert got == wanted, (
            f"(e) valuation (qty, value in cents) as of {when} differs from the auditor's:\n"
            + diff(wanted, got))
        if skus is None:
            tb_wanted = books.trial_balance(as_of)
            tb_got, _, _ = rep.trial_balance(as_of)
            assert tb_got == tb_wanted, (
                f"(e) trial balance (cents) as of {when} differs from the auditor's:\n"
                + diff(tb_wanted, tb_got))


def check_statuses(stream: Stream, statuses: dict[str, ItemResult]) -> None:
    """(f) Each event posted or was rejected exactly as the auditor predicts."""
    predicted = auditor.predict(stream.events, stream.policy == "allow")
    rows = []
    for ev in stream.events:
        got = statuses[ev.id]
        want_status, want_code = predicted[ev.id]
        if (got.status, got.code) != (want_status, want_code):
            rows.append(f"    {ev.id} ({ev.type} {day(ev.date)}): auditor {want_status} "
                        f"{want_code or ''}  engine {got.status} {got.code or ''} {got.message or ''}")
    assert not rows, "(f) posted/rejected differs from the auditor's prediction:\n" + "\n".join(rows)


def post_stream(ws: Workspace, stream: Stream, *, after_chunk: Any = None
                ) -> tuple[list[Ev], dict[str, ItemResult]]:
    """Post a stream chunk by chunk; returns the posted events (arrival order) and
    every event's result. `after_chunk(posted, chunk, last)` runs after each chunk."""
    posted: list[Ev] = []
    statuses: dict[str, ItemResult] = {}
    chunks = list(stream.chunked())
    for number, chunk in enumerate(chunks, 1):
        results = post_chunk(ws, chunk, stream.slice_size)
        statuses.update(results)
        posted.extend(e for e in chunk if results[e.id].status == "posted")
        if after_chunk is not None:
            after_chunk(posted, chunk, number == len(chunks))
    return posted, statuses


def post_all_valid(ws: Workspace, stream: Stream, label: str) -> list[Ev]:
    """Post a stream whose every event must post (an always-valid stream);
    returns the posted events, or fails naming each one that did not post."""
    posted, statuses = post_stream(ws, stream)
    rejected = [f"    {ev.id} ({ev.type} {day(ev.date)}): {statuses[ev.id].code} "
                f"{statuses[ev.id].message}" for ev in stream.events
                if statuses[ev.id].status != "posted"]
    assert not rejected, (f"{label}: events of an always-valid stream were not posted:\n"
                          + "\n".join(rejected))
    return posted


def end_state(ws: Workspace) -> tuple[dict, dict]:
    return engine_valuation(ws, None), engine_trial_balance(ws, None)[0]
