"""Posting: a stream of events -> the ledger, batch by batch, each batch one transaction.

Problem: posting must be fast (tens of thousands of events per second), yet a
bad event must never lose or half-post another, a duplicate must never post
twice, and a crash must leave every event either fully posted or absent.

How: events are taken in batches. Inside one transaction a batch
  A. sorts out duplicates and conflicts (one query for all its keys),
  B. resolves every candidate (one query for all referenced events),
  C. loads the stock positions it touches (cached positions are checked by
     version, so only stale ones are read) and the document pools it needs,
  D. evaluates the events in arrival order. A rejected event is undone in
     memory (state snapshots) and stored in the exception queue; a backdated
     event or a reversal is flushed and re-costed by a replay inside a
     savepoint, so its failure cannot touch the rest of the batch,
and finally writes all rows with one INSERT per table.
"""

from __future__ import annotations

import gc
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from queue import Empty
from typing import Any, Callable, Iterable, Iterator

import orjson
from sqlalchemy import Connection, and_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from stockledger import limits
from stockledger.adapters.db import schema as s
from stockledger.adapters.db import store
from stockledger.adapters.formats.requests import Parsed, first_difference, load_stored, parse_event
from stockledger.domain.chain import chain_rows
from stockledger.domain.errors import ErrorCode, InvariantViolation, Rejection
from stockledger.domain.evaluate import (
    Emitter,
    GLLine,
    Move,
    check_balanced,
    check_documents,
    evaluate,
    net_lines,
)
from stockledger.domain.events import Event, EventKind, ManualEntry, Reversal, ymd_text
from stockledger.domain.pools import ReceiptPool, ShipmentPool, WipPool
from stockledger.domain.replay import (
    FastDelta,
    OpRecord,
    _PoolOnly,
    closed_dates,
    diff_lines,
    diff_moves,
    period_rejection,
    replay,
)
from stockledger.domain.resolve import Prepared, RefLookup, complete, prepare, resolve
from stockledger.domain.sequences import record_seqs
from stockledger.domain.setup import CogsOn, Product, Setup
from stockledger.domain.states import StockState
from stockledger.service.workspace import CachedPosition, Workspace, actor_name

REFERABLE = frozenset({EventKind.RECEIPT, EventKind.SHIPMENT})  # what documents refer to
KIND_TEXT = {kind: kind.value for kind in EventKind}  # `.value` is a Python property
REVERSAL_TEXT = EventKind.REVERSAL.value

ENTRY_COLUMNS = ("id", "event_id", "kind", "entity_id", "date_ymd", "cause_event_id",
                 "producer_event_id", "chain_seq", "hash")
LINE_COLUMNS = ("event_id", "producer_event_id", "date_ymd", "entity_id", "account_id",
                "amount_minor", "sku_id", "location_id", "op_no", "entry_id")  # GLLine + entry
MOVE_COLUMNS = ("event_id", "op_no", "producer_event_id", "kind", "op", "date_ymd", "sku_id",
                "location_id", "entity_id", "account_id", "counter_account_id", "qty_micro",
                "value_minor", "layer_ref", "lot", "param_qty_micro",
                "param_value_minor", "lineage")  # = Move
# Movements are written in (sku, location) order within a flush, a stable sort, so
# one item's movements keep their posting order: each slice then touches the key
# index's leaves in order, not at random (decision 0015: the index's cost per event
# grew from 9.6 to 21 us over a million events, sorted from 7.6 to 14.8).
MOVE_KEY = itemgetter(Move._fields.index("sku_id"), Move._fields.index("location_id"))
EVENT_COLUMNS = ("id", "source", "ext_id", "kind", "date_ymd", "entity_id", "ref_event_id",
                 "order_ref", "config_version", "content_hash", "payload", "batch_id")
# events whose outflow costs feed a pool that later events read
POOL_SOURCES = frozenset({EventKind.SHIPMENT, EventKind.PRODUCTION_ISSUE})
# documents that draw on a receipt's or a shipment's pool (a landed cost refers to
# receipts but draws on no pool)
POOL_DOCUMENTS = frozenset({EventKind.VENDOR_BILL, EventKind.PURCHASE_RETURN,
                            EventKind.CUSTOMER_INVOICE, EventKind.SALES_RETURN})


@dataclass(frozen=True, slots=True)
class ItemResult:
    source: str
    ext_id: str
    status: str  # posted | duplicate | exception
    code: str | None = None
    message: str | None = None


@dataclass
class PostSummary:
    posted: int = 0
    duplicates: int = 0
    exceptions: int = 0
    recosts: int = 0
    by_code: Counter = field(default_factory=Counter)
    results: list[ItemResult] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would post
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.posted + self.duplicates + self.exceptions

    def as_dict(self) -> dict[str, Any]:
        return {"posted": self.posted, "duplicates": self.duplicates,
                "exceptions": self.exceptions, "recost_entries": self.recosts,
                "by_code": dict(sorted(self.by_code.items()))}


class _Rollback(Exception):
    """Raised inside the transaction of a dry run so nothing is committed."""


class IdBlock:
    """Primary keys handed out in blocks (one query per block, not per row)."""

    def __init__(self, conn: Callable[[], Connection], table: Any, block: int = 1024) -> None:
        self.conn, self.table, self.block = conn, table, block
        self.free: list[int] = []
        self.next: int | None = None  # SQLite: we hold the write lock, count on from max(id)

    def take(self, count: int = 1) -> list[int]:
        if self.next is not None:
            start, self.next = self.next, self.next + count
            return list(range(start, start + count))
        conn = self.conn()
        if not store.is_postgres(conn):
            self.next = store.allocate_ids(conn, self.table, 1)[0]
            return self.take(count)
        while len(self.free) < count:
            self.free.extend(store.allocate_ids(conn, self.table, max(self.block, count)))
        taken, self.free = self.free[:count], self.free[count:]
        return taken

    def one(self) -> int:
        if self.next is not None:  # the common case, without building a list
            self.next += 1
            return self.next - 1
        return self.take(1)[0]


# ---------------------------------------------------------------------------
# Reading stored events back (references, documents, replays).
# ---------------------------------------------------------------------------

class StoredEvents:
    """Resolves stored events (with the setup version they were posted under),
    memoised in the workspace: a stored event never changes."""

    def __init__(self, ws: Workspace, conn: Callable[[], Connection]) -> None:
        self.ws, self._conn = ws, conn
        self.local: dict[int, Event | Reversal] = {}  # this batch's, whatever their kind

    @property
    def conn(self) -> Connection:
        return self._conn()

    def get(self, event_id: int) -> Event | Reversal:
        event = self.local.get(event_id) or self.ws.events.get(event_id)
        if event is None:
            self.load([event_id])
            event = self.local[event_id]
        return event

    def load(self, ids: Iterable[int]) -> None:
        missing = [i for i in set(ids) if i not in self.local and i not in self.ws.events]
        if missing:
            self.resolve_rows(list(store.events_by_ids(self.conn, missing).values()))

    def resolve_rows(self, rows: list[Any]) -> list[Event | Reversal]:
        refs = {r.ref_event_id for r in rows if r.ref_event_id is not None}
        self.load(ref for ref in refs if ref not in {r.id for r in rows})
        out: list[Event | Reversal] = []
        for row in sorted(rows, key=lambda r: r.id):
            cached = self.local.get(row.id) or self.ws.events.get(row.id)
            if cached is None:
                cached = self._resolve(row)
                if cached.kind in REFERABLE:  # what later batches look up again
                    self.ws.events.put(row.id, cached)
            self.local[row.id] = cached
            out.append(cached)
        return out

    def _resolve(self, row: Any) -> Event | Reversal:
        setup = self.ws.setup(self.conn, row.config_version)
        request = load_stored(row.payload) if row.kind != "manual_journal" else None
        ref_id = row.ref_event_id

        def find(source: str, ext_id: str) -> RefLookup:
            if ref_id is not None and not getattr(request, "refs", None):
                return RefLookup(self.get(ref_id))
            found = store.events_by_keys(self.conn, [(source, ext_id)]).get((source, ext_id))
            return RefLookup(self.get(found.id) if found is not None else None)

        if row.kind == "manual_journal":
            return ManualEntry(row.id, row.source, row.ext_id, row.date_ymd, 0)  # type: ignore[return-value]
        try:
            if request.type == EventKind.REVERSAL.value:
                target = self.get(ref_id)
                return Reversal(row.id, request.source, request.id, row.date_ymd,
                                row.config_version, target)  # type: ignore[arg-type]
            event, _ = resolve(request, event_id=row.id, setup=setup, find_ref=find)
        except Rejection as exc:
            raise InvariantViolation(f"stored event {row.id} no longer resolves: {exc}") from exc
        return event


class DbHistory:
    """The ledger as a replay reads it (domain.replay.History)."""

    def __init__(self, batch: "Batch") -> None:
        self.batch = batch
        self.conn = batch.conn
        self.stored = batch.stored
        self.allow_negative = batch.allow_negative
        self.events: dict[int, Event] = {}  # resolved for this replay (no LRU eviction)

    def event(self, event_id: int) -> Event:
        event = self.events.get(event_id)
        if event is None:
            self.prefetch([event_id])
            event = self.events[event_id]
        return event

    def prefetch(self, event_ids: list[int]) -> None:
        missing = [i for i in event_ids if i not in self.events]
        for part in store.chunks(missing, 5000):
            rows = list(store.events_by_ids(self.conn, part).values())
            for event in self.stored.resolve_rows(rows):
                self.events[event.id] = event  # type: ignore[assignment]

    def key_ops(self, sku_id: int, location_id: int) -> list[OpRecord]:
        # the query's columns are OpRecord's fields: a row is a record as it stands
        records = list(map(OpRecord._make, store.key_history(self.conn, sku_id, location_id)))
        if any(rec.lineage for rec in records):
            m = s.movements
            lineages = latest_lineages(self.conn, [and_(m.c.sku_id == sku_id,
                                                        m.c.location_id == location_id)])
            records = [rec._replace(lineage=lineages.get((rec.event_id, rec.op_no), rec.lineage))
                       for rec in records]
        return records

    def settling_events(self, sku_id: int, location_id: int) -> set[int]:
        return store.settling_events(self.conn, sku_id, location_id)

    def with_documents(self, event_ids: list[int]) -> set[int]:
        return store.bases_with_documents(self.conn, event_ids)

    def documents(self, base_id: int) -> list[Event]:
        """The live documents drawing on `base_id`'s pools, in (date, arrival) order."""
        rows = store.documents_of(self.conn, [base_id])
        gone = store.reversed_among(self.conn, [r.id for r in rows])
        docs = self.stored.resolve_rows([r for r in rows if r.id not in gone])
        return sorted((d for d in docs if isinstance(d, Event) and d.kind in POOL_DOCUMENTS),
                      key=lambda d: (d.date, d.id))

    def op_value(self, event_id: int, op_no: int) -> int:
        return store.op_values(self.conn, [event_id]).get((event_id, op_no), (0, 0))[1]

    def order_events(self, order: str) -> list[Event]:
        rows = store.events_of_orders(self.conn, [order])
        gone = store.reversed_among(self.conn, [r.id for r in rows])
        events = self.stored.resolve_rows([r for r in rows if r.id not in gone])
        return sorted((e for e in events if isinstance(e, Event)), key=lambda e: (e.date, e.id))

    def new_state(self, product: Product, location_id: int) -> StockState:
        return self.batch.empty_state(product, location_id)


def latest_lineages(conn: Connection, where: list[Any]) -> dict[tuple[int, int], str]:
    """The lineage of each transfer-in operation (event, op): that of its latest
    movement carrying one. A replay that changes the layers a transfer took from
    writes the new lineage on a recost movement (movements are never updated)."""
    m = s.movements
    out: dict[tuple[int, int], str] = {}
    for event_id, op_no, lineage in conn.execute(
            select(m.c.event_id, m.c.op_no, m.c.lineage)
            .where(m.c.lineage.is_not(None), m.c.producer_event_id == m.c.event_id, *where)
            .order_by(m.c.id)):
        out[(event_id, op_no)] = lineage
    return out


# ---------------------------------------------------------------------------
# One batch = one transaction.
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class _Candidate:
    parsed: Parsed
    prepared: Prepared | None = None
    event: Event | None = None
    unmapped: Rejection | None = None
    is_reversal: bool = False


class Batch:
    """Posts a list of parsed events in one transaction (see module docstring)."""

    def __init__(self, ws: Workspace, conn: Connection, summary: PostSummary, *,
                 retry: bool, dry_run: bool, keep_results: bool, origin: str) -> None:
        self.ws, self.conn, self.summary = ws, conn, summary
        self.retry, self.dry_run, self.keep_results = retry, dry_run, keep_results
        self.setup: Setup = ws.setup(conn)
        self.allow_negative = self.setup.policies.allow_negative
        # the closures hold `conn`, not the batch: a batch is no reference cycle, so
        # reference counting frees it (and all it holds) at once
        self.stored = StoredEvents(ws, lambda: conn)
        self.closed = store.closed_periods(conn)
        self.chain = store.chain_head(conn, lock=True)  # (seq, hash) of the last entry
        self.event_ids = IdBlock(lambda: conn, s.events)
        self.entry_ids = IdBlock(lambda: conn, s.journal_entries)
        self.batch_id = store.allocate_ids(conn, s.batches, 1)[0]
        conn.execute(s.batches.insert(), [{"id": self.batch_id, "committed_at": store.now_text(),
                                           "actor": actor_name(), "origin": origin}])
        # pending rows
        self.event_rows: list[tuple] = []
        self.entry_rows: list[tuple] = []
        self.line_rows: list[tuple] = []
        self.move_rows: list[tuple] = []
        self.ref_rows: list[tuple[int, int]] = []  # event_refs (landed costs)
        self.exception_puts: dict[tuple[str, str], tuple[str, str, str, str]] = {}
        self.exception_posted: dict[tuple[str, str], Any] = {}
        self.dirty: set[tuple[int, int]] = set()
        self.source_stats: dict[str, list[int]] = {}  # posted, duplicates, conflicts, exceptions
        self.source_seqs: dict[str, list[int]] = defaultdict(list)
        # what this batch knows
        self.states: dict[tuple[int, int], StockState] = {}
        self.in_batch: dict[tuple[str, str], Event] = {}
        self.in_batch_ids: set[int] = set()  # the ids of in_batch's events
        self.failed_ids: set[int] = set()
        self.reversed_now: set[int] = set()
        self.op_values: dict[tuple[int, int], int] = {}
        self.pools: dict[tuple, ReceiptPool | ShipmentPool] = {}
        self.pool_built: set[int] = set()
        self.pool_last: dict[int, int] = {}
        self.docs_by_base: dict[int, list[Event]] = {}
        self.base_values: dict[tuple[int, int], int] = {}
        self.wip_pools: dict[str, WipPool] = {}
        self.docs_by_order: dict[str, list[Event]] = {}
        self.order_last: dict[str, int] = {}
        self.db_refs: dict[tuple[str, str], Any] = {}
        self.db_reversed: set[int] = set()
        self.recost_count = 0
        self.pools_reset = False
        self.seen_keys: set[tuple[str, str]] = set()

    # -- results -----------------------------------------------------------------------
    def _result(self, parsed: Parsed, status: str, code: str | None = None,
                message: str | None = None) -> None:
        summary = self.summary
        stats = self.source_stats.get(parsed.source)
        if stats is None:
            stats = self.source_stats[parsed.source] = [0, 0, 0, 0]
        if status == "posted":
            summary.posted += 1
            stats[0] += 1
        elif status == "duplicate":
            summary.duplicates += 1
            stats[1] += 1
        else:
            summary.exceptions += 1
            summary.by_code[code] += 1
            stats[3] += 1
            if code == ErrorCode.CONFLICT.value:
                stats[2] += 1
        if parsed.seq is not None and status != "duplicate":
            self.source_seqs[parsed.source].append(parsed.seq)
        if self.keep_results:
            summary.results.append(ItemResult(parsed.source, parsed.ext_id, status, code, message))

    def _fail(self, parsed: Parsed, rejection: Rejection, event_id: int | None = None) -> None:
        # A raised Rejection kept in a local (cand.unmapped, a closed-period check)
        # forms a cycle exception -> traceback -> frame -> batch; cut it here so a
        # rejected event never keeps a whole batch alive until a full GC.
        rejection.__traceback__ = None
        if event_id is not None:
            self.failed_ids.add(event_id)
        key = (parsed.source, parsed.ext_id)
        self.exception_puts[key] = (rejection.code.value, rejection.message, parsed.payload,
                                    parsed.content_hash)
        self.exception_posted.pop(key, None)
        self._result(parsed, "exception", rejection.code.value, rejection.message)

    # -- the batch -----------------------------------------------------------------------
    def run(self, items: list[Parsed], slice_size: int = limits.SLICE_EVENTS_MAX) -> None:
        """One transaction, worked through in slices: a slice's reads, then its
        evaluation, then its rows written (not committed), so later slices find
        earlier events in the database."""
        for start in range(0, len(items), slice_size):
            candidates = self._sort_out(items[start:start + slice_size])
            self._resolve_all(candidates)
            self._prefetch(candidates)
            for cand in candidates:
                if cand.is_reversal:
                    self._post_reversal(cand)
                elif cand.event is not None:
                    self._post(cand)
            self.flush()
        self.finish()

    def _sort_out(self, items: list[Parsed]) -> list[_Candidate]:
        """A: duplicates, conflicts, unparseable input."""
        keys = [(p.source, p.ext_id) for p in items]
        posted = store.events_by_keys(self.conn, keys)
        queued = store.exceptions_by_keys(self.conn, keys)
        seen = self.seen_keys
        candidates: list[_Candidate] = []
        for parsed in items:
            key = (parsed.source, parsed.ext_id)
            if key in seen:
                self._result(parsed, "duplicate")
                continue
            seen.add(key)
            row = posted.get(key)
            in_queue = queued.get(key)
            same_as_queued = in_queue is not None and in_queue.content_hash == parsed.content_hash
            if row is not None:
                if row.content_hash == parsed.content_hash or (same_as_queued and not self.retry):
                    self._result(parsed, "duplicate")
                    continue
                if parsed.valid:
                    what = first_difference(orjson.loads(row.payload),
                                            orjson.loads(parsed.payload))
                else:
                    what = "the new content is not a valid event"
                self._fail(parsed, Rejection(
                    ErrorCode.CONFLICT, f"{parsed.source}/{parsed.ext_id} was already posted "
                    f"with other content (first difference: {what})"))
                continue
            if same_as_queued and not self.retry:
                self._result(parsed, "duplicate")
                continue
            if in_queue is not None:
                self.exception_posted[key] = in_queue
            if not parsed.valid:
                self._fail(parsed, Rejection(ErrorCode.INVALID_EVENT, parsed.error or "invalid"))
                continue
            candidates.append(_Candidate(parsed))
        return candidates

    def _find_ref(self, source: str, ext_id: str) -> RefLookup:
        event = self.in_batch.get((source, ext_id))
        if event is not None:
            return RefLookup(event)
        row = self.db_refs.get((source, ext_id))
        if row is None:
            return RefLookup(None)
        return RefLookup(self.stored.get(row.id), reversed=row.id in self.db_reversed)

    def _prepare(self, cand: _Candidate) -> None:
        """The reference-free half of resolution: from the parser process when it
        used this setup version, else here."""
        parsed = cand.parsed
        version = self.setup.version
        try:
            if parsed.prepared is not None and parsed.prepared.version == version:
                cand.prepared = parsed.prepared
            elif parsed.prepare_error is not None and parsed.prepare_error[0] == version:
                _, code, message = parsed.prepare_error
                raise Rejection(ErrorCode(code), message)
            else:
                cand.prepared = prepare(parsed.get_request(), self.setup)
        except Rejection as rejection:
            self._fail(parsed, rejection)
            return
        cand.is_reversal = cand.prepared.kind == REVERSAL_TEXT

    def _resolve_all(self, candidates: list[_Candidate]) -> None:
        """B: resolution (reversals are resolved when reached, after a flush)."""
        for cand in candidates:
            self._prepare(cand)
        ref_keys = [(c.prepared.ref_source, c.prepared.ref) for c in candidates
                    if c.prepared is not None and c.prepared.ref is not None]
        ref_keys += [key for c in candidates if c.prepared is not None for key in c.prepared.refs]
        if ref_keys:
            self.db_refs = store.events_by_keys(self.conn, ref_keys)
            self.stored.resolve_rows(list(self.db_refs.values()))
            self.db_reversed = store.reversed_among(self.conn, [r.id for r in self.db_refs.values()])
        plain = [c for c in candidates if c.prepared is not None and not c.is_reversal]
        ids = self.event_ids.take(len(plain))
        for cand, event_id in zip(plain, ids):
            parsed = cand.parsed
            try:
                event, cand.unmapped = complete(cand.prepared, event_id=event_id,
                                                source=parsed.source, ext_id=parsed.ext_id,
                                                setup=self.setup, find_ref=self._find_ref)
            except Rejection as rejection:
                self._fail(parsed, rejection, event_id)
                continue
            cand.event = event  # type: ignore[assignment]
            self.in_batch[parsed.source, parsed.ext_id] = event  # type: ignore[assignment]
            self.in_batch_ids.add(event_id)

    def _prefetch(self, candidates: list[_Candidate]) -> None:
        """C: stock positions and document pools the batch will touch."""
        keys: set[tuple[int, int]] = set()
        bases: set[int] = set()
        for cand in candidates:
            event = cand.event
            if event is None:
                continue
            location = event.location.id if event.location is not None else None
            for line in event.lines:
                if event.scope:  # cost updates, landed costs: one part per location
                    continue
                for part in line.parts:
                    keys.add((part.product.id, location))
                    if event.to_location is not None:
                        keys.add((part.product.id, event.to_location.id))
                if event.kind in (EventKind.ASSEMBLY, EventKind.DISASSEMBLY):
                    keys.add((line.product.id, location))
            if event.ref is not None and event.ref.id not in self.failed_ids:
                bases.add(event.ref.id)
        self.load_positions(keys)
        orders = sorted({c.event.order for c in candidates if c.event is not None
                         and c.event.order is not None and c.event.order not in self.wip_pools
                         and c.event.order not in self.docs_by_order})
        if orders:
            self._prefetch_orders(orders)
        in_batch_ids = self.in_batch_ids
        stored_bases = [b for b in bases if b not in in_batch_ids and b not in self.pool_built
                        and b not in self.docs_by_base]
        if stored_bases:
            self._prefetch_pools(stored_bases)

    # A base's documents (a production order's events) are read once a batch, or
    # again after a replay resets the pools: posting a document builds its base's
    # pool first, which then lives on in memory; read again, they would be counted
    # twice.

    def _prefetch_pools(self, bases: list[int]) -> None:
        conn = self.conn
        rows = store.documents_of(conn, bases)
        gone = store.reversed_among(conn, [r.id for r in rows])
        docs = self.stored.resolve_rows([r for r in rows if r.id not in gone])
        for base in bases:
            self.docs_by_base.setdefault(base, [])
        for doc in docs:
            if isinstance(doc, Event) and doc.kind in POOL_DOCUMENTS \
                    and doc.ref is not None and doc.ref.id in self.docs_by_base:
                self.docs_by_base[doc.ref.id].append(doc)
        for base_docs in self.docs_by_base.values():
            base_docs.sort(key=lambda d: (d.date, d.id))
        for (event_id, op_no), (_, value) in store.op_values(conn, bases).items():
            self.base_values[(event_id, op_no)] = value

    # -- positions ------------------------------------------------------------------------
    def empty_state(self, product: Product, location_id: int) -> StockState:
        location = self.setup.location_by_id(location_id)
        return StockState(product.method,
                          self.setup.standard_unit_cost(product, location.entity.exp))

    def load_positions(self, keys: Iterable[tuple[int, int]]) -> None:
        keys = [k for k in keys if k not in self.states]
        if not keys:
            return
        cache = self.ws.positions
        known = [cache[k].id for k in keys if k in cache and cache[k].id is not None]
        conn = self.conn
        versions = store.position_versions(conn, known, lock=True) if known else {}
        stale = [k for k in keys if k not in cache or cache[k].id is None
                 or versions.get(cache[k].id) != cache[k].version]
        if stale:
            rows = store.positions_by_keys(conn, stale, lock=True)
            for key in stale:
                product = self.setup.product_by_id(key[0])
                row = rows.get(key)
                if row is None:
                    cache[key] = CachedPosition(None, 0, self.empty_state(product, key[1]))
                else:
                    location = self.setup.location_by_id(key[1])
                    state = StockState.from_data(
                        product.method, self.setup.standard_unit_cost(product, location.entity.exp),
                        orjson.loads(row.state), row.last_date_ymd)
                    cache[key] = CachedPosition(row.id, row.version, state)
        for key in keys:
            self.states[key] = cache[key].state

    # -- Context (for evaluation) ---------------------------------------------------------------
    def stock(self, product: Product, location_id: int) -> StockState:
        key = (product.id, location_id)
        state = self.states.get(key)
        if state is None:
            self.load_positions([key])
            state = self.states[key]
        self.dirty.add(key)
        return state

    def receipt_pool(self, receipt: Event, line_index: int) -> ReceiptPool:
        key = ("r", receipt.id, line_index)
        pool = self.pools.get(key)
        if pool is None:
            self._build_pools(receipt)
            pool = self.pools.get(key)
            if pool is None:
                line = receipt.lines[line_index]
                pool = ReceiptPool(f"receipt {receipt.ext_id!r} line {line_index + 1} "
                                   f"{line.product.sku}", line.parts[0].qty, line.amount or 0)
                self.pools[key] = pool
        return pool  # type: ignore[return-value]

    def shipment_pool(self, shipment: Event, op_no: int) -> ShipmentPool:
        key = ("s", shipment.id, op_no)
        pool = self.pools.get(key)
        if pool is None:
            self._build_pools(shipment)
            pool = self.pools.get(key)
            if pool is None:
                value = self.op_values.get((shipment.id, op_no))
                if value is None:
                    value = self.base_values.get((shipment.id, op_no))
                if value is None:
                    value = store.op_values(self.conn, [shipment.id]).get(
                        (shipment.id, op_no), (0, 0))[1]
                line = shipment.lines[op_no // 64]
                part = line.parts[op_no % 64]
                pool = ShipmentPool(f"shipment {shipment.ext_id!r} line {line.index + 1} "
                                    f"{part.product.sku}", part.qty, -value,
                                    part.product.category.cogs_on is CogsOn.INVOICE)
                self.pools[key] = pool
        return pool  # type: ignore[return-value]

    def wip_pool(self, order: str) -> WipPool:
        pool = self.wip_pools.get(order)
        if pool is None:
            pool = self.wip_pools[order] = WipPool(order)
            events = self.docs_by_order.get(order)
            if events is None:
                self._prefetch_orders([order])
                events = self.docs_by_order[order]
            last = 0
            for event in events:
                evaluate(event, _PoolOnly(self, event.id, event.date))
                last = max(last, event.date)
            self.order_last[order] = last
        return pool

    def peek_stock(self, product: Product, location_id: int) -> StockState | None:
        key = (product.id, location_id)
        if key not in self.states and key not in self.ws.positions:
            if not store.positions_by_keys(self.conn, [key]):
                return None
        return self.stock(product, location_id)

    def recorded_out(self, event_id: int, op_no: int) -> int:
        value = self.op_values.get((event_id, op_no))
        if value is None:
            value = self.base_values.get((event_id, op_no))
        if value is None:
            value = store.op_values(self.conn, [event_id]).get((event_id, op_no), (0, 0))[1]
        return -value

    def _prefetch_orders(self, orders: list[str]) -> None:
        """The posted events of these production orders, and their issues' costs."""
        conn = self.conn
        rows = store.events_of_orders(conn, orders)
        gone = store.reversed_among(conn, [r.id for r in rows])
        events = [e for e in self.stored.resolve_rows([r for r in rows if r.id not in gone])
                  if isinstance(e, Event)]
        for order in orders:
            self.docs_by_order.setdefault(order, [])
        for event in sorted(events, key=lambda e: (e.date, e.id)):
            self.docs_by_order[event.order].append(event)  # type: ignore[index]
        for key, (_, value) in store.op_values(conn, [e.id for e in events]).items():
            self.base_values[key] = value

    def _build_pools(self, base: Event) -> None:
        if base.id in self.pool_built:
            return
        self.pool_built.add(base.id)
        docs = self.docs_by_base.get(base.id)
        if docs is None:
            if not self.pools_reset and self.in_batch.get((base.source, base.ext_id)) is base:
                docs = []  # posted in this batch and no replay since: no document yet
            else:  # every document posted so far is in the database (replays flush first)
                self._prefetch_pools([base.id])
                docs = self.docs_by_base[base.id]
        last = 0
        for doc in docs:
            evaluate(doc, _PoolOnly(self, doc.id, doc.date))
            last = max(last, doc.date)
        self.pool_last[base.id] = last

    # -- posting one event ------------------------------------------------------------------
    def _closed(self, event: Event | Reversal, date: int) -> Rejection | None:
        for entity_id in event.entity_ids:
            through = self.closed.get(entity_id)
            if through is not None and date <= through:
                code = self.setup.entity_by_id(entity_id).code
                return Rejection(ErrorCode.PERIOD_CLOSED,
                                 f"dated {ymd_text(date)}: {code} is closed through "
                                 f"{ymd_text(through)}")
        return None

    def _backdated(self, emitter: Emitter, event: Event) -> bool:
        for state, snap in emitter._saved.values():
            if isinstance(state, StockState) and snap[5] > event.date:
                return True
        if event.ref is not None and self.pool_last.get(event.ref.id, 0) > event.date:
            return True
        if event.order is not None and self.order_last.get(event.order, 0) > event.date:
            return True
        return False

    def _post(self, cand: _Candidate) -> None:
        event = cand.event
        assert event is not None
        parsed = cand.parsed
        if event.ref is not None:
            if event.ref.id in self.failed_ids:
                self._fail(parsed, Rejection(ErrorCode.UNKNOWN_REFERENCE,
                                             f"ref {event.ref.ext_id!r} is not a posted event"),
                           event.id)
                return
            if event.ref.id in self.reversed_now:
                self._fail(parsed, Rejection(ErrorCode.UNKNOWN_REFERENCE,
                                             f"ref {event.ref.ext_id!r} was reversed"), event.id)
                return
        emitter = Emitter(self, event.id, event.date)
        try:
            closed = self._closed(event, event.date) if self.closed else None
            if cand.unmapped is not None or closed is not None:
                check_documents(event, self)  # OVER_RETURN outranks both (SPEC 10)
                raise cand.unmapped or closed  # type: ignore[misc]
            evaluate(event, emitter)
            backdated = self._backdated(emitter, event)
        except Rejection as rejection:
            # against the current states, not those at its date: a backdated event
            # short of stock, or invalid there (an issue to an order completed later,
            # a write-down above a later unit cost), is judged by the replay at its date
            backdated = rejection.code in (ErrorCode.INSUFFICIENT_STOCK,
                                           ErrorCode.INVALID_EVENT) and \
                self._backdated(emitter, event)
            if not backdated:
                emitter.rollback()
                self._fail(parsed, rejection, event.id)
                return
        if backdated:
            emitter.rollback()
            self._post_with_replay(cand, inserted=event)
            return
        self._record_event(parsed, event)
        self._record_outcome(event.id, emitter.moves, emitter.lines, cause=event.id,
                             base_kind=event.kind in POOL_SOURCES)
        if event.ref is not None:
            self.pool_last[event.ref.id] = max(self.pool_last.get(event.ref.id, 0), event.date)
        if event.order is not None:
            self.order_last[event.order] = max(self.order_last.get(event.order, 0), event.date)
        self._result(parsed, "posted")

    def _record_event(self, parsed: Parsed, event: Event | Reversal, ref_id: int | None = None) -> None:
        ref = ref_id if ref_id is not None else (event.ref.id if isinstance(event, Event)
                                                 and event.ref is not None else None)
        # a reversal belongs to its target's production order: `report wip` sums the
        # order's WIP lines by event, and the mirror must cancel what the target put in
        order = event.order if isinstance(event, Event) else event.target.order
        self.event_rows.append((event.id, event.source, event.ext_id, KIND_TEXT[event.kind], event.date,
                                event.entity.id, ref, order, event.config_version,
                                parsed.content_hash, parsed.payload, self.batch_id))
        if isinstance(event, Event) and len(event.refs) > 1:
            self.ref_rows.extend((event.id, ref_id) for ref_id in sorted({r.id for r in event.refs}))
        key = (parsed.source, parsed.ext_id)
        self.exception_puts.pop(key, None)
        if isinstance(event, Event):
            self.in_batch[key] = event
            self.in_batch_ids.add(event.id)
            if event.kind in REFERABLE:
                self.ws.events.put(event.id, event)

    def _record_outcome(self, producer: int, moves: list[Move], lines: list[GLLine], *,
                        cause: int, base_kind: bool = False) -> None:
        """Entries, lines and movements of one evaluation, checked and queued for writing.

        The common case (every line in one entry of the event itself, no account
        repeated for the same thing) is recognised in one pass; anything else is
        netted and grouped by entry."""
        line_rows = self.line_rows
        single = bool(lines)
        if single:
            first = lines[0]
            event_id, date, entity_id = first.event_id, first.date, first.entity_id
            total = 0
            for line in lines:
                if line.event_id != event_id or line.date != date or line.entity_id != entity_id:
                    single = False
                    break
                total += line.amount
        if single:
            # One entry (the common case). Handlers never emit two lines for the
            # same account and item (tests check it), so there is nothing to net.
            if total:
                raise InvariantViolation(f"unbalanced entry for event {event_id}: off by {total}")
            entry_id = self.entry_ids.one()
            entries = {(event_id, date, entity_id): entry_id}
            kind = "post" if event_id == producer and cause == producer else "recost"
            self.entry_rows.append((entry_id, event_id, kind, entity_id, date, cause, producer))
            tail = (entry_id,)
            line_rows.extend([line + tail for line in lines])
        else:
            lines = net_lines(lines)
            check_balanced(lines)
            entries = {}
            for line in lines:
                entry_key = (line.event_id, line.date, line.entity_id)
                entry_id = entries.get(entry_key)
                if entry_id is None:
                    entry_id = self.entry_ids.one()
                    entries[entry_key] = entry_id
                    kind = "post" if line.event_id == producer and cause == producer else "recost"
                    self.entry_rows.append((entry_id, line.event_id, kind, line.entity_id,
                                            line.date, cause, producer))
                line_rows.append(line + (entry_id,))
        if cause == producer:
            self.move_rows.extend(moves)  # a Move is its row
        else:
            self.move_rows.extend(move._replace(kind="recost") for move in moves)
        if base_kind:  # a shipment: documents will need its cost (pools)
            op_values = self.op_values
            for move in moves:
                if move.event_id == producer:
                    key = (producer, move.op_no)
                    op_values[key] = op_values.get(key, 0) + move.value

    # -- replays (backdated events, reversals) --------------------------------------------------
    def _post_with_replay(self, cand: _Candidate, *, inserted: Event | None = None,
                          reversal: Reversal | None = None) -> None:
        self.flush()
        history = DbHistory(self)
        removed = reversal.target if reversal is not None else None
        trigger_id = inserted.id if inserted is not None else reversal.id  # type: ignore[union-attr]
        chain_before = self.chain
        savepoint = self.conn.begin_nested()
        try:
            removed_keys = []
            if removed is not None:
                removed_keys = [(self.setup.product_by_id(sku), loc) for sku, loc in
                                _own_move_keys(self.conn, removed.id)]
            result = replay(history, inserted=inserted, removed=removed, removed_keys=removed_keys)
            reevaluated = [i for i in result.order if inserted is None or i != inserted.id]
            producers = reevaluated + ([removed.id] if removed is not None else [])
            old_lines: dict = {}
            for row in store.produced_lines(self.conn, producers):
                key = (row.event_id, row.producer_event_id, row.date_ymd, row.entity_id,
                       row.account_id, row.sku_id, row.location_id, row.op_no)
                old_lines[key] = old_lines.get(key, 0) + int(row.amount)
            old_moves: dict = {}
            for row in store.produced_moves(self.conn, producers):
                old_moves[(row.event_id, row.op_no, row.producer_event_id, row.date_ymd,
                           row.sku_id, row.location_id, row.layer_ref)] = (
                    int(row.qty), int(row.value), row)
            new_lines = [line for i in reevaluated for line in result.outcomes[i][1]]
            new_moves = [move for i in reevaluated for move in result.outcomes[i][0]]
            line_deltas = diff_lines(old_lines, new_lines)
            move_deltas = diff_moves(old_moves, new_moves)
            lineages = self._changed_lineages(new_moves)
            dates = [(key[3], key[2]) for key in line_deltas]
            dates += [(delta.entity_id, delta.date) for delta in result.fast]
            if inserted is not None:
                dates += [(line.entity_id, line.date) for line in result.outcomes[inserted.id][1]]
            hits = closed_dates(dates, self.closed)
            if hits:
                codes = {e.id: e.code for e in self.setup.entities.values()}
                raise period_rejection(hits, codes, self.closed, "a recost or reversal")
            if inserted is not None:
                moves, lines = result.outcomes[inserted.id]
                check_balanced(lines)
                self._record_event(cand.parsed, inserted)
                self._record_outcome(inserted.id, moves, lines, cause=inserted.id,
                                     base_kind=inserted.kind in POOL_SOURCES)
            else:
                assert reversal is not None and removed is not None
                self._record_event(cand.parsed, reversal, ref_id=removed.id)
                self.conn.execute(s.reversals.insert(), [{
                    "event_id": removed.id, "reversal_event_id": reversal.id,
                    "reversed_at": store.now_text()}])
                self.reversed_now.add(removed.id)
            self._write_deltas(line_deltas, move_deltas, trigger_id, reversal, lineages)
            self._write_fast(result.fast, trigger_id)
            self.flush()
            savepoint.commit()
        except Rejection as rejection:
            # the replay worked on its own states: only its rows are undone
            savepoint.rollback()
            self.chain = chain_before
            self._discard_pending()
            self._fail(cand.parsed, rejection, trigger_id)
            return
        except BaseException:
            savepoint.rollback()
            self.chain = chain_before
            raise
        for key, state in result.states.items():
            cached = self.ws.positions.get(key)
            if cached is None:
                self.load_positions([key])
                cached = self.ws.positions[key]
            cached.state = state
            self.states[key] = state
            self.dirty.add(key)
        self._reset_pools()
        self._result(cand.parsed, "posted")

    def _reset_pools(self) -> None:
        self.pools_reset = True
        self.pools.clear()
        self.wip_pools.clear()
        self.docs_by_order.clear()
        self.order_last.clear()
        self.pool_built.clear()
        self.pool_last.clear()
        self.docs_by_base.clear()
        self.base_values.clear()
        self.op_values.clear()

    def _discard_pending(self) -> None:
        self.event_rows, self.entry_rows, self.line_rows, self.move_rows = [], [], [], []
        self.ref_rows = []

    def _changed_lineages(self, moves: list[Move]) -> dict[tuple[int, int], Move]:
        """Re-run transfer-ins whose units now come from other layers than recorded."""
        new = {(m.event_id, m.op_no): m for m in moves
               if m.lineage is not None and m.producer_id == m.event_id}
        if not new:
            return {}
        m = s.movements
        stored: dict[tuple[int, int], str] = {}
        for part in store.chunks(sorted({key[0] for key in new})):
            stored.update(latest_lineages(self.conn, [m.c.event_id.in_(part)]))
        return {key: move for key, move in new.items() if stored.get(key) != move.lineage}

    def _write_deltas(self, line_deltas: dict, move_deltas: list, trigger_id: int,
                      reversal: Reversal | None,
                      lineages: dict[tuple[int, int], Move] | None = None) -> None:
        """Recost entries (and the reversal's mirror) from the differences; a
        changed lineage rides on its operation's recost movement (one with no
        change in qty or value if need be)."""
        lineages = dict(lineages or {})
        removed_id = reversal.target.id if reversal is not None else None
        entries: dict[tuple, int] = {}
        for key, amount in sorted(line_deltas.items(), key=lambda kv: (kv[0][2], kv[0][0])):
            event_id, producer, date, entity, account, sku, loc, op_no = key
            mirror = removed_id is not None and event_id == removed_id and producer == removed_id
            owner = reversal.id if mirror else event_id  # type: ignore[union-attr]
            kind = "reversal" if mirror else "recost"
            entry_key = (owner, kind, date, entity, producer)
            entry_id = entries.get(entry_key)
            if entry_id is None:
                entry_id = self.entry_ids.one()
                entries[entry_key] = entry_id
                self.entry_rows.append((entry_id, owner, kind, entity, date, trigger_id,
                                        owner if mirror else producer))
                if kind == "recost":
                    self.recost_count += 1
            self.line_rows.append((owner, owner if mirror else producer, date, entity, account,
                                   amount, sku, loc, op_no, entry_id))
        for (event_id, op_no, producer, date, *_), qty, value, template in move_deltas:
            mirror = removed_id is not None and event_id == removed_id and producer == removed_id
            owner = reversal.id if mirror else event_id  # type: ignore[union-attr]
            lineage = None
            if not mirror and producer == event_id and (event_id, op_no) in lineages:
                lineage = lineages.pop((event_id, op_no)).lineage
            self.move_rows.append((
                owner, op_no, owner if mirror else producer, "reversal" if mirror else "recost",
                int(template.op), date, template.sku_id, template.location_id,
                template.entity_id, template.account_id, template.counter_id, qty, value,
                template.layer_ref, template.lot, None, None, lineage))
        for move in lineages.values():
            self.move_rows.append((
                move.event_id, move.op_no, move.event_id, "recost", move.op, move.date,
                move.sku_id, move.location_id, move.entity_id, move.account_id,
                move.counter_id, 0, 0, move.layer_ref, move.lot, None, None, move.lineage))

    def _write_fast(self, deltas: list[FastDelta], trigger_id: int) -> None:
        """Recost entries for operations re-run in the fast lane: inventory by the
        change in value, the operation's own counter account by its opposite."""
        entries: dict[tuple[int, int, int], int] = {}
        entry_rows, line_rows, move_rows = self.entry_rows, self.line_rows, self.move_rows
        for d in deltas:
            key = (d.event_id, d.date, d.entity_id)
            entry_id = entries.get(key)
            if entry_id is None:
                entry_id = entries[key] = self.entry_ids.one()
                entry_rows.append((entry_id, d.event_id, "recost", d.entity_id, d.date,
                                   trigger_id, d.event_id))
                self.recost_count += 1
            if d.value:
                line_rows.append((d.event_id, d.event_id, d.date, d.entity_id, d.account_id,
                                  d.value, d.sku_id, d.location_id, d.op_no, entry_id))
                if d.counter_id is not None:
                    line_rows.append((d.event_id, d.event_id, d.date, d.entity_id, d.counter_id,
                                      -d.value, d.sku_id, d.location_id, d.op_no, entry_id))
            move_rows.append((d.event_id, d.op_no, d.event_id, "recost", d.op, d.date, d.sku_id,
                              d.location_id, d.entity_id, d.account_id, d.counter_id, d.qty,
                              d.value, d.layer_ref, d.lot, None, None, None))

    def _post_reversal(self, cand: _Candidate) -> None:
        self.flush()
        prepared = cand.prepared
        source, ref = prepared.ref_source, prepared.ref
        rows = store.events_by_keys(self.conn, [(source, ref)])
        row = rows.get((source, ref))
        event_id = self.event_ids.one()

        def find(_source: str, _ext_id: str) -> RefLookup:
            if row is None:
                return RefLookup(None)
            target = self.stored.get(row.id)
            reversed_ = bool(store.reversed_among(self.conn, [row.id]))
            docs = [d for d in store.documents_of(self.conn, [row.id])]
            gone = store.reversed_among(self.conn, [d.id for d in docs])
            live = tuple(d.ext_id for d in docs if d.id not in gone)
            return RefLookup(target, reversed_, live)

        try:
            reversal, _ = complete(prepared, event_id=event_id, source=cand.parsed.source,
                                   ext_id=cand.parsed.ext_id, setup=self.setup, find_ref=find)
            if isinstance(reversal, Reversal):
                closed = self._closed(reversal, reversal.target.date)
                if closed is not None:
                    raise closed
        except Rejection as rejection:
            self._fail(cand.parsed, rejection, event_id)
            return
        self._post_with_replay(cand, reversal=reversal)  # type: ignore[arg-type]

    # -- writing -----------------------------------------------------------------------------
    def _chain_entries(self) -> None:
        """Give each pending entry its place in the chain and its hash."""
        if not self.entry_rows:
            return
        seq, previous = self.chain
        self.entry_rows, seq, previous = chain_rows(previous, seq, self.entry_rows,
                                                    self.line_rows)
        self.chain = (seq, previous)

    def flush(self) -> None:
        """Write the ledger rows gathered so far (inside the open transaction)."""
        conn = self.conn
        if self.dry_run:
            self.summary.entries.extend(_entries_for_display(self, self.entry_rows,
                                                             self.line_rows))
        self._chain_entries()
        store.insert_rows(conn, s.events, EVENT_COLUMNS, self.event_rows)
        store.insert_rows(conn, s.event_refs, ("event_id", "ref_event_id"), self.ref_rows)
        store.insert_rows(conn, s.journal_entries, ENTRY_COLUMNS, self.entry_rows)
        store.insert_rows(conn, s.journal_lines, LINE_COLUMNS, self.line_rows)
        self.move_rows.sort(key=MOVE_KEY)
        store.insert_rows(conn, s.movements, MOVE_COLUMNS, self.move_rows)
        self._discard_pending()

    def finish(self) -> None:
        """End of the batch: the ledger rows, then the derived state, once."""
        self.flush()
        store.set_chain_head(self.conn, *self.chain)
        self._flush_positions()
        self._flush_exceptions()
        self._flush_sources()

    def _flush_positions(self) -> None:
        if not self.dirty:
            return
        cache = self.ws.positions
        inserts, updates = [], []
        new_keys = [k for k in self.dirty if cache[k].id is None]
        new = set(new_keys)
        new_ids = store.allocate_ids(self.conn, s.positions, len(new_keys)) if new_keys else []
        for key, new_id in zip(new_keys, new_ids):
            cache[key].id = new_id
        for key in self.dirty:
            cached = cache[key]
            state = cached.state
            data = orjson.dumps(state.to_data()).decode()
            if key in new:
                inserts.append((cached.id, key[0], key[1], state.qty_total, state.value_total,
                                state.last_date, 1, data))
                cached.version = 1
            else:
                cached.version += 1
                updates.append((state.qty_total, state.value_total, state.last_date,
                                cached.version, data, cached.id))
        store.insert_rows(self.conn, s.positions, ("id", "sku_id", "location_id", "qty_micro",
                                                   "value_minor", "last_date_ymd", "version",
                                                   "state"), inserts)
        store.execute_many(self.conn, "UPDATE positions SET qty_micro = ?, value_minor = ?, "
                           "last_date_ymd = ?, version = ?, state = ? WHERE id = ?", updates)
        self.dirty.clear()

    def _flush_exceptions(self) -> None:
        conn, now = self.conn, store.now_text()
        t = s.exceptions
        if self.exception_posted:
            for (source, ext_id), row in self.exception_posted.items():
                conn.execute(s.exception_log.insert(), [{
                    "source": source, "ext_id": ext_id, "action": "posted", "code": row.code,
                    "reason": "posted on a later attempt", "actor": actor_name(), "at": now,
                    "payload": row.payload}])
                conn.execute(t.delete().where(and_(t.c.source == source, t.c.ext_id == ext_id)))
            self.exception_posted.clear()
        if self.exception_puts:
            existing = store.exceptions_by_keys(conn, list(self.exception_puts))
            for (source, ext_id), (code, message, payload, digest) in self.exception_puts.items():
                if (source, ext_id) in existing:
                    conn.execute(update(t).where(and_(t.c.source == source, t.c.ext_id == ext_id))
                                 .values(code=code, message=message, payload=payload,
                                         content_hash=digest, last_seen_at=now,
                                         attempts=t.c.attempts + 1))
                else:
                    conn.execute(t.insert(), [{
                        "source": source, "ext_id": ext_id, "code": code, "message": message,
                        "payload": payload, "content_hash": digest, "first_seen_at": now,
                        "last_seen_at": now, "attempts": 1}])
            self.exception_puts.clear()

    def _flush_sources(self) -> None:
        if not self.source_stats:
            return
        t = s.sources
        rows = {r.source: r for r in self.conn.execute(
            select(t).where(t.c.source.in_(list(self.source_stats))))}
        for source, stats in self.source_stats.items():
            row = rows.get(source)
            gaps = [tuple(g) for g in orjson.loads(row.gaps)] if row is not None else []
            last_seq = row.last_seq if row is not None else None
            gaps, last_seq = record_seqs(gaps, last_seq, self.source_seqs.get(source, []))
            posted, duplicates, conflicts, exceptions = stats
            values = {
                "events_posted": (row.events_posted if row else 0) + posted,
                "duplicates": (row.duplicates if row else 0) + duplicates,
                "conflicts": (row.conflicts if row else 0) + conflicts,
                "exceptions": (row.exceptions if row else 0) + exceptions,
                "last_seq": last_seq, "gaps": orjson.dumps(gaps).decode(),
            }
            if row is None:
                self.conn.execute(t.insert(), [{"source": source, **values}])
            else:
                self.conn.execute(update(t).where(t.c.source == source).values(**values))
        self.source_stats.clear()
        self.source_seqs.clear()


def _own_move_keys(conn: Connection, event_id: int) -> list[tuple[int, int]]:
    m = s.movements
    return sorted({(r[0], r[1]) for r in conn.execute(
        select(m.c.sku_id, m.c.location_id).where(m.c.producer_event_id == event_id,
                                                 m.c.event_id == event_id))})


def _entries_for_display(batch: Batch, entry_rows: list[tuple], line_rows: list[tuple]
                         ) -> list[dict[str, Any]]:
    """What a dry run would post, in the shape of `stockledger journal --json`."""
    from stockledger.domain.money import format_money

    setup = batch.setup
    by_entry: dict[int, list[tuple]] = {}
    for row in line_rows:
        by_entry.setdefault(row[-1], []).append(row)
    keys = {row[0]: (row[1], row[2]) for row in batch.event_rows}  # not written yet
    out = []
    for entry_id, event_id, kind, entity_id, date, cause, _producer, *_ in entry_rows:
        source, ext_id = keys.get(event_id) or batch.stored.get(event_id).key
        exp = setup.entity_by_id(entity_id).exp
        lines = sorted(by_entry.get(entry_id, []), key=lambda r: r[5] < 0)
        out.append({
            "entry": entry_id, "date": ymd_text(date), "kind": kind,
            "event": {"source": source, "id": ext_id},
            "lines": [{"account": setup.account_by_id(r[4]).code,
                       "debit": format_money(max(r[5], 0), exp),
                       "credit": format_money(max(-r[5], 0), exp),
                       "sku": setup.product_by_id(r[6]).sku if r[6] else None,
                       "location": setup.location_by_id(r[7]).code if r[7] else None}
                      for r in lines],
        })
    return out


# ---------------------------------------------------------------------------
# Driver: batches, transactions, retries on concurrent-writer conflicts.
# ---------------------------------------------------------------------------

RETRIES_MAX = 5
GC_EVERY_BATCHES = 5


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while posting.

    A batch holds tens of thousands of short-lived parsed events and row
    tuples; with the collector on, CPython rescans them thousands of times (a
    quarter of the posting time, measured). Posting creates no reference
    cycles (rejections have their tracebacks cut), so reference counting frees
    everything; ``post_events`` collects the young generation after each batch.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def batch_sizes(size_max: int) -> Iterator[int]:
    """How many events each transaction takes at most: small at first, so that
    posting starts (and commits) as soon as the parser has read a little, then
    doubling up to `size_max`."""
    size = min(size_max, limits.BATCH_EVENTS_FIRST)
    while True:
        yield size
        size = min(size_max, size * 2)


def _batches(items: Iterable[Parsed], size_max: int) -> Iterator[list[Parsed]]:
    """Events in batches; an event whose key is already in the batch with other
    content starts a new one (it is a conflict, to be judged against the first)."""
    batch: list[Parsed] = []
    hashes: dict[tuple[str, str], str] = {}
    sizes = batch_sizes(size_max)
    size = next(sizes)
    for parsed in items:
        key = (parsed.source, parsed.ext_id)
        previous = hashes.get(key)
        if len(batch) >= size or (previous is not None and previous != parsed.content_hash):
            yield batch
            batch, hashes = [], {}
            size = next(sizes)
        batch.append(parsed)
        hashes[key] = parsed.content_hash
    if batch:
        yield batch


def post_events(ws: Workspace, items: Iterable[Parsed], *, origin: str = "post",
                dry_run: bool = False, retry: bool = False, keep_results: bool = False,
                batch_size: int = limits.BATCH_EVENTS_MAX,
                slice_size: int = limits.SLICE_EVENTS_MAX,
                progress: Callable[[int], None] | None = None) -> PostSummary:
    """Post parsed events; returns counts (and per-event results when asked).
    A batch is one transaction, worked through in slices of `slice_size` events."""
    ws.require()
    with collector_paused():
        return _post_all(ws, items, origin=origin, dry_run=dry_run, retry=retry,
                         keep_results=keep_results, batch_size=batch_size,
                         slice_size=slice_size, progress=progress)


def _post_all(ws: Workspace, items: Iterable[Parsed], *, origin: str, dry_run: bool,
              retry: bool, keep_results: bool, batch_size: int, slice_size: int,
              progress: Callable[[int], None] | None) -> PostSummary:
    summary = PostSummary()
    started = time.perf_counter()
    for number, items_batch in enumerate(_batches(items, batch_size), 1):
        for attempt in range(RETRIES_MAX):
            partial = PostSummary()
            try:
                with ws.write() as conn:
                    batch = Batch(ws, conn, partial, retry=retry, dry_run=dry_run,
                                  keep_results=keep_results, origin=origin)
                    batch.run(items_batch, slice_size)
                    partial.recosts += batch.recost_count
                    if dry_run:
                        raise _Rollback
                break
            except _Rollback:
                ws.forget_uncommitted()
                break
            except (IntegrityError, DBAPIError) as exc:
                ws.forget_uncommitted()
                if not _retryable(exc) or attempt == RETRIES_MAX - 1:
                    raise
            except BaseException:
                ws.forget_uncommitted()
                raise
        _merge(summary, partial)
        if not dry_run:
            ws.refresh_statistics()
        # free the batch now (the batch generator still holds the list): what the
        # collector finds alive below, it scans, and the batch is all garbage
        del batch
        items_batch.clear()
        if number % GC_EVERY_BATCHES == 0:
            gc.collect(0)
        if progress is not None:
            progress(partial.total)
    summary.seconds = time.perf_counter() - started
    return summary


def _retryable(exc: Exception) -> bool:
    """Another writer got there first (unique key, deadlock, serialization)."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")


def _merge(total: PostSummary, part: PostSummary) -> None:
    total.posted += part.posted
    total.duplicates += part.duplicates
    total.exceptions += part.exceptions
    total.recosts += part.recosts
    total.by_code.update(part.by_code)
    total.results.extend(part.results)
    total.entries.extend(part.entries)


PARSE_CHUNK_LINES = 2000
PARSER_CHECK_SECONDS = 1.0  # how often a posting process waiting for the parser checks it lives
PARSE_CHUNKS_AHEAD = 16  # ~32,000 events parsed ahead at most (a batch and a half)


def parse_lines(lines: Iterable[str | bytes], name: str = "") -> Iterator[Parsed]:
    """JSON lines -> parsed events, in order; blank lines are skipped."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            if not line.strip():
                continue
        elif not line.strip():
            continue
        yield parse_event(line, f"{name}line {number}: " if name else f"line {number}: ")


def parse_file(path: str, name: str = "", *, helper: bool = True,
               on_bytes: Callable[[int], None] | None = None,
               setup: Setup | None = None,
               on_wait: Callable[[float], None] | None = None) -> Iterator[Parsed]:
    """Parse a JSON-lines file, in order. With `helper`, a second process reads,
    validates and canonicalises the file in chunks while this one posts (the
    machine's other core); the pipe between them blocks when full, so memory
    stays flat however large the file. `on_wait(seconds)`: time spent waiting
    for the parser process, blocked rather than unpickling (benchmarks report it)."""
    if not helper:
        with open(path, "rb") as handle:
            lines: Iterable[bytes] = handle
            if on_bytes is not None:
                lines = _counting(handle, on_bytes)
            yield from parse_lines(lines, name)
        return
    import multiprocessing

    from stockledger.adapters.formats.requests import parsed_from_tuple

    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=PARSE_CHUNKS_AHEAD)  # the parser runs ahead, boundedly
    process = context.Process(target=_parse_file_in_helper, args=(path, name, queue, setup),
                              name="stockledger-parser", daemon=True)
    process.start()
    try:
        while True:
            if on_wait is None:
                message = _next_message(queue, process)
            else:  # blocked = wall time minus this thread's CPU (unpickling is work)
                started, cpu = time.perf_counter(), time.thread_time()
                message = _next_message(queue, process)
                on_wait(time.perf_counter() - started - (time.thread_time() - cpu))
            if message is None:
                break
            if isinstance(message, str):
                raise RuntimeError(f"the parser process failed: {message}")
            consumed, results = message
            if on_bytes is not None:
                on_bytes(consumed)
            for item in results:
                yield parsed_from_tuple(item, Prepared._make)
        process.join()
    finally:
        if process.is_alive():
            process.terminate()
            process.join()
        queue.close()


def _next_message(queue: Any, process: Any) -> Any:
    """The parser's next message. A parser process that dies without a word
    (killed, out of memory) would leave a plain `get` waiting forever: this one
    looks every second and raises."""
    while True:
        try:
            return queue.get(timeout=PARSER_CHECK_SECONDS)
        except Empty:
            if not process.is_alive():
                raise RuntimeError(f"the parser process ended without finishing "
                                   f"(exit code {process.exitcode})") from None


def _counting(lines: Iterable[bytes], on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    for line in lines:
        on_bytes(len(line))
        yield line


def _parse_file_in_helper(path: str, name: str, queue: Any, setup: Setup | None) -> None:
    """The parser process: parse (and, given the setup, prepare) `path` chunk by
    chunk and send plain tuples."""
    from stockledger.adapters.formats.requests import parse_chunk

    def prepare_one(request: Any) -> tuple:
        try:
            return tuple(prepare(request, setup))  # type: ignore[arg-type]
        except Rejection as rejection:
            return ("!", setup.version, rejection.code.value, rejection.message)  # type: ignore[union-attr]

    try:
        with open(path, "rb") as handle:
            number = 1
            while True:
                chunk = []
                consumed = 0
                for line in handle:
                    chunk.append(line)
                    consumed += len(line)
                    if len(chunk) >= PARSE_CHUNK_LINES:
                        break
                if not chunk:
                    break
                queue.put((consumed, parse_chunk(number, name, chunk,
                                                 prepare_one if setup is not None else None)))
                number += len(chunk)
        queue.put(None)
    except BaseException as exc:  # reported to the posting process, which raises it
        queue.put(f"{type(exc).__name__}: {exc}")
    finally:
        queue.close()
        queue.join_thread()
