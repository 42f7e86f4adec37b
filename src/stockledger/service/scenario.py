"""Scenario files (SPEC 9): a setup, then steps that post events and check the books.

Accountants write these as acceptance cases; the test suite runs every file in
``shared/scenarios`` with this same code, on SQLite and on PostgreSQL. Each
run gets a throw-away workspace; the first failed expectation is reported with
what was wanted and what the books say.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

import orjson
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stockledger.adapters.formats.requests import parse_event
from stockledger.domain.errors import SetupError
from stockledger.service import reports
from stockledger.service.ingest import post_events
from stockledger.service.workspace import UserError, Workspace, check_setup, init_workspace


@dataclass(frozen=True)
class ScenarioResult:
    file: str
    name: str
    passed: bool
    failure: str | None = None


class _Mismatch(Exception):
    pass


@contextmanager
def throwaway_workspace(server_url: str | None = None) -> Iterator[Workspace]:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server of `server_url`."""
    if server_url is None or server_url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="stockledger-") as folder:
            with Workspace(f"sqlite:///{os.path.join(folder, 'scenario.db')}") as ws:
                yield ws
        return
    with temporary_database(server_url) as url:
        with Workspace(url) as ws:
            yield ws


@contextmanager
def temporary_database(server_url: str, prefix: str = "stockledger_tmp") -> Iterator[str]:
    """CREATE DATABASE on the server of `server_url`, yield its URL, DROP it afterwards."""
    base = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _num(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _Mismatch(f"not a number in the scenario: {value!r}") from None


def run_file(path: str, server_url: str | None = None) -> ScenarioResult:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        return ScenarioResult(path, path, False, f"cannot read scenario: {exc}")
    name = (doc or {}).get("name", os.path.basename(path))
    try:
        setup = check_setup(doc.get("setup"))
    except SetupError as exc:
        return ScenarioResult(path, name, False, "invalid setup: " + "; ".join(exc.problems))
    with throwaway_workspace(server_url) as ws:
        init_workspace(ws, setup)
        for number, step in enumerate(doc.get("steps") or [], 1):
            try:
                _run_step(ws, step)
            except _Mismatch as exc:
                return ScenarioResult(path, name, False, f"step {number}: {exc}")
            except UserError as exc:
                return ScenarioResult(path, name, False, f"step {number}: {exc}")
    return ScenarioResult(path, name, True)


def _run_step(ws: Workspace, step: dict[str, Any]) -> None:
    if not isinstance(step, dict) or len(step) != 1:
        raise _Mismatch(f"a step is one of post, expect, close_period, reopen_period, "
                        f"retry_exceptions; got {step!r}")
    (kind, body), = step.items()
    if kind == "post":
        items = [parse_event(orjson.dumps(event, default=str).decode()) for event in body or []]
        post_events(ws, items, origin="scenario")
    elif kind == "expect":
        _expect(ws, body or {})
    elif kind == "close_period":
        reports.period_close(ws, body["entity"], reports.parse_date(str(body["through"])))
    elif kind == "reopen_period":
        reports.period_reopen(ws, body["entity"], reports.parse_date(str(body["through"])),
                              body.get("reason", "scenario"))
    elif kind == "retry_exceptions":
        reports.exceptions_retry(ws)
    else:
        raise _Mismatch(f"unknown step {kind!r}")


def _expect(ws: Workspace, body: dict[str, Any]) -> None:
    as_of = reports.parse_date(str(body["as_of"])) if body.get("as_of") is not None else None
    entity = body.get("entity")
    for what, wanted in body.items():
        if what in ("as_of", "entity"):
            continue
        check = _CHECKS.get(what)
        if check is None:
            raise _Mismatch(f"unknown expectation {what!r}")
        check(ws, wanted, as_of, entity)


def _check_trial_balance(ws: Workspace, wanted: dict[str, Any], as_of: int | None,
                         entity: str | None) -> None:
    report = reports.trial_balance(ws, as_of, entity)
    got = {a["code"]: _num(a["balance"]) for a in report["accounts"]}
    for account, amount in wanted.items():
        have = got.get(str(account), Decimal(0))
        if have != _num(amount):
            raise _Mismatch(f"trial_balance {account}: wanted {amount}, got {have}")


def _check_valuation(ws: Workspace, wanted: dict[str, Any], as_of: int | None,
                     entity: str | None) -> None:
    report = reports.valuation(ws, as_of, entity)
    got = {f"{line['sku']}@{line['location']}": line for line in report["lines"]}
    for key, expected in wanted.items():
        line = got.get(key, {"qty": "0", "value": "0"})
        for field in ("qty", "value"):
            if field in expected and _num(line[field]) != _num(expected[field]):
                raise _Mismatch(f"valuation {key} {field}: wanted {expected[field]}, "
                                f"got {line[field]}")


def _check_journal(ws: Workspace, wanted: dict[str, Any], as_of: int | None,
                   entity: str | None) -> None:
    kind = wanted.get("kind", "post")
    source = wanted.get("source")
    entries = [e for e in reports.journal(ws, event=str(wanted["event"]), source=source)
               if e["kind"] == kind]
    if not entries:
        raise _Mismatch(f"journal {wanted['event']}: no {kind} entry")
    got: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        for line in entry["lines"]:
            for side in ("debit", "credit"):
                amount = _num(line[side])
                if amount:
                    key = (line["account"], side)
                    got[key] = got.get(key, Decimal(0)) + amount
    want: dict[tuple[str, str], Decimal] = {}
    for line in wanted.get("lines", []):
        for side in ("debit", "credit"):
            if side in line:
                key = (str(line["account"]), side)
                want[key] = want.get(key, Decimal(0)) + _num(line[side])
    want = {k: v for k, v in want.items() if v}
    if want != got:
        def show(d: dict[tuple[str, str], Decimal]) -> str:
            return ", ".join(f"{a} {side} {v}" for (a, side), v in sorted(d.items()))
        raise _Mismatch(f"journal {wanted['event']} ({kind}): wanted [{show(want)}], "
                        f"got [{show(got)}]")


def _check_exceptions(ws: Workspace, wanted: list[dict[str, Any]], as_of: int | None,
                      entity: str | None) -> None:
    queue = reports.exceptions_list(ws)
    got = sorted((e["source"], e["id"], e["code"]) for e in queue)
    want = sorted((str(e.get("source", "default")), str(e["id"]), e["code"]) for e in wanted)
    if got != want:
        detail = {(e["source"], e["id"]): e["message"] for e in queue}
        extra = [f"{g[1]} {g[2]} ({detail.get((g[0], g[1]))})" for g in got if g not in want]
        raise _Mismatch(f"exceptions: wanted {[f'{w[1]} {w[2]}' for w in want]}, "
                        f"got {[f'{g[1]} {g[2]}' for g in got]}"
                        + (f"; unexpected: {'; '.join(extra)}" if extra else ""))


def _check_reconcile(ws: Workspace, wanted: str, as_of: int | None, entity: str | None) -> None:
    report = reports.reconcile(ws, as_of, entity)
    if report["status"] != wanted:
        diffs = [a for a in report["accounts"] if _num(a["difference"])]
        raise _Mismatch(f"reconcile: wanted {wanted}, got {report['status']} {diffs}")


_CHECKS = {
    "trial_balance": _check_trial_balance,
    "valuation": _check_valuation,
    "journal": _check_journal,
    "exceptions": _check_exceptions,
    "reconcile": _check_reconcile,
}
