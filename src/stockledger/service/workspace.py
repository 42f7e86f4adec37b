"""A workspace: one database, its master-data versions, and verified caches.

Problem: posting must not re-read master data and stock positions for every
event, yet several processes may write to the same database. Caches here hold
only immutable things (a setup version, a resolved event) or things checked
against the database inside the writing transaction (a stock position carries
a version number; a stale one is reloaded), so the database stays the single
source of truth and nothing depends on which process posted what.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import orjson
import yaml
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, inspect, select

from stockledger.adapters.db import schema as s
from stockledger.adapters.db import store
from stockledger.adapters.db.engine import (
    Checkpointer,
    is_sqlite,
    make_engine,
    resolve_url,
    sqlite_file,
    upgrade,
)
from stockledger.adapters.formats.requests import setup_document, setup_problems_from_validation
from stockledger.domain.errors import SetupError
from stockledger.domain.setup import Setup, build_setup, validate_setup
from stockledger.domain.states import StockState


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it as one line."""


def actor_name() -> str:
    return os.environ.get("STOCKLEDGER_ACTOR") or os.environ.get("USER") or "unknown"


@dataclass
class CachedPosition:
    id: int | None  # None until the position row exists
    version: int
    state: StockState


class LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class Workspace:
    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.sqlite = is_sqlite(self.url)
        path = sqlite_file(self.url) if self.sqlite else None
        self.checkpointer = Checkpointer(path) if path is not None else None
        self.engine: Engine = make_engine(self.url, checkpoint_on_commit=self.checkpointer is None)
        self.setups: dict[int, Setup] = {}
        self.events = LRU(5_000)  # event id -> resolved Event (immutable)
        self.positions: dict[tuple[int, int], CachedPosition] = {}

    # -- connections -----------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self.checkpointer is not None:
            self.checkpointer.before_write()
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn
        if self.checkpointer is not None:
            self.checkpointer.after_commit()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            with conn.begin():
                yield conn

    def refresh_statistics(self) -> list[str]:
        """PostgreSQL: ANALYZE the ledger tables that grew since their statistics
        were taken (decision 0015); returns their names. SQLite plans without."""
        if self.sqlite:
            return []
        with self.engine.connect() as conn:
            with conn.begin():
                stale = store.stale_statistics(conn)
            if stale:
                with conn.begin():
                    # several posting processes: one analyzes, the others go on
                    if not store.try_lock(conn, "stockledger analyze"):
                        return []
                    store.analyze(conn, stale)
        return stale

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------
    def initialised(self) -> bool:
        return inspect(self.engine).has_table("config_versions")

    def require(self) -> None:
        if not self.initialised():
            raise UserError(f"no stockledger workspace at {self.display_url()}: "
                            f"run `stockledger init --config setup.yaml` first")
        with self.read() as conn:
            if store.latest_config_version(conn) is None:
                raise UserError("the workspace has no setup: run `stockledger init --config FILE`")

    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- setup ------------------------------------------------------------------------
    def setup(self, conn: Connection, version: int | None = None) -> Setup:
        if version is None:
            version = store.latest_config_version(conn)
            if version is None:
                raise UserError("the workspace has no setup: run `stockledger init --config FILE`")
        cached = self.setups.get(version)
        if cached is None:
            doc = orjson.loads(store.config_document(conn, version))
            cached = build_setup(doc, version, store.code_ids(conn))
            self.setups[version] = cached
        return cached

    def current_setup(self) -> Setup:
        with self.read() as conn:
            return self.setup(conn)

    def forget_uncommitted(self) -> None:
        """After a rolled-back transaction: nothing cached may outlive it."""
        self.positions.clear()
        self.events.clear()

    def forget_positions(self, keys: Any = None) -> None:
        if keys is None:
            self.positions.clear()
        else:
            for key in keys:
                self.positions.pop(key, None)


def read_setup_file(path: str) -> dict[str, Any]:
    """A setup YAML (or JSON) file -> validated plain data, or SetupError listing all problems."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise UserError(f"setup file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"setup file {path} is a directory") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file (UTF-8 YAML expected)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise UserError(f"{path} is not valid YAML: {problem}{where}") from None
    return check_setup(data)


def check_setup(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SetupError(["the setup must be a mapping with entities, accounts, roles, ..."])
    try:
        doc = setup_document(data)
    except ValidationError as exc:
        raise SetupError(setup_problems_from_validation(exc)) from None
    problems = validate_setup(doc)
    if problems:
        raise SetupError(problems)
    return doc


def init_workspace(ws: Workspace, doc: dict[str, Any], reason: str = "initial setup") -> int:
    if ws.initialised():
        with ws.read() as conn:
            if store.latest_config_version(conn) is not None:
                raise UserError(f"{ws.display_url()} already holds a workspace; use "
                                f"`stockledger config apply FILE --reason TEXT` to change its setup")
    upgrade(ws.url)
    with ws.write() as conn:
        conn.execute(s.workspace_meta.insert(), [{"key": "created_at", "value": store.now_text()}])
        return _store_version(conn, doc, reason, [{"change": "created"}])


def _store_version(conn: Connection, doc: dict[str, Any], reason: str,
                   changes: list[dict[str, Any]]) -> int:
    store.ensure_codes(conn, s.entities, (e["code"] for e in doc["entities"]))
    store.ensure_codes(conn, s.accounts, (a["code"] for a in doc.get("accounts", [])))
    store.ensure_codes(conn, s.skus, (p["sku"] for p in doc.get("products", [])))
    store.ensure_codes(conn, s.locations, (loc["code"] for loc in doc.get("locations", [])))
    version = (store.latest_config_version(conn) or 0) + 1
    conn.execute(s.config_versions.insert(), [{
        "id": version, "applied_at": store.now_text(), "actor": actor_name(), "reason": reason,
        "document": orjson.dumps(doc).decode(), "changes": orjson.dumps(changes).decode(),
    }])
    return version


SECTIONS = (("entities", "code"), ("accounts", "code"), ("categories", "code"), ("uoms", "code"),
            ("products", "sku"), ("locations", "code"))


def diff_setup(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Old -> new, item by item."""
    changes: list[dict[str, Any]] = []
    for section, key in SECTIONS:
        before = {item[key]: item for item in old.get(section, [])}
        after = {item[key]: item for item in new.get(section, [])}
        for code in after:
            if code not in before:
                changes.append({"section": section, "code": code, "change": "added",
                                "new": after[code]})
            elif before[code] != after[code]:
                changes.append({"section": section, "code": code, "change": "changed",
                                "old": before[code], "new": after[code]})
        for code in before:
            if code not in after:
                changes.append({"section": section, "code": code, "change": "removed",
                                "old": before[code]})
    for section in ("roles", "mapping", "policies"):
        if old.get(section) != new.get(section):
            changes.append({"section": section, "change": "changed", "old": old.get(section),
                            "new": new.get(section)})
    return changes


def apply_config(ws: Workspace, doc: dict[str, Any], reason: str) -> tuple[int, list[dict[str, Any]]]:
    """Store a new setup version; refuses changes that would rewrite history."""
    if not reason.strip():
        raise UserError("--reason is required: say why the setup changes")
    ws.require()
    with ws.write() as conn:
        current = ws.setup(conn)
        old_doc = orjson.loads(store.config_document(conn, current.version))
        changes = diff_setup(old_doc, doc)
        if not changes:
            raise UserError("the setup is unchanged: nothing to apply")
        problems = _history_problems(conn, old_doc, doc)
        if problems:
            raise SetupError(problems)
        version = _store_version(conn, doc, reason, changes)
    ws.forget_positions()
    return version, changes


def _history_problems(conn: Connection, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A setup change may not remove what has postings, nor change how a SKU
    with stock history is valued."""
    problems: list[str] = []
    used_skus = {r[0] for r in conn.execute(
        select(s.skus.c.code).where(s.skus.c.id.in_(select(s.movements.c.sku_id).distinct())))}
    used_locations = {r[0] for r in conn.execute(
        select(s.locations.c.code).where(
            s.locations.c.id.in_(select(s.movements.c.location_id).distinct())))}
    used_accounts = {r[0] for r in conn.execute(
        select(s.accounts.c.code).where(
            s.accounts.c.id.in_(select(s.journal_lines.c.account_id).distinct())))}
    new_products = {p["sku"]: p for p in new.get("products", [])}
    new_locations = {loc["code"]: loc for loc in new.get("locations", [])}
    new_accounts = {a["code"] for a in new.get("accounts", [])}
    old_categories = {c["code"]: c for c in old.get("categories", [])}
    new_categories = {c["code"]: c for c in new.get("categories", [])}
    for sku in sorted(used_skus):
        if sku not in new_products:
            problems.append(f"products: {sku} has stock movements and cannot be removed")
            continue
        old_product = next((p for p in old.get("products", []) if p["sku"] == sku), None)
        if old_product is None:
            continue
        old_method = old_categories.get(old_product["category"], {}).get("valuation")
        new_method = new_categories.get(new_products[sku]["category"], {}).get("valuation")
        if old_method != new_method:
            problems.append(f"products: {sku} has stock movements; its valuation cannot change "
                            f"from {old_method} to {new_method}")
    for code in sorted(used_locations):
        if code not in new_locations:
            problems.append(f"locations: {code} has stock movements and cannot be removed")
        else:
            old_loc = next((loc for loc in old.get("locations", []) if loc["code"] == code), None)
            if old_loc and old_loc["entity"] != new_locations[code]["entity"]:
                problems.append(f"locations: {code} has stock movements and cannot move to "
                                f"another entity")
    for code in sorted(used_accounts):
        if code not in new_accounts:
            problems.append(f"accounts: {code} has journal lines and cannot be removed")
    return problems


def config_history(ws: Workspace) -> list[dict[str, Any]]:
    ws.require()
    t = s.config_versions
    with ws.read() as conn:
        rows = conn.execute(select(t.c.id, t.c.applied_at, t.c.actor, t.c.reason, t.c.changes)
                            .order_by(t.c.id)).all()
    return [{"version": r.id, "applied_at": r.applied_at, "actor": r.actor, "reason": r.reason,
             "changes": orjson.loads(r.changes)} for r in rows]
