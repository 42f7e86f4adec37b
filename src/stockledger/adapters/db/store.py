"""The queries the services run, in one place.

Hot-path writes go through ``insert_rows``: on PostgreSQL ``COPY``; on SQLite
multi-row ``INSERT ... VALUES (...), (...)`` statements of a few hundred rows
(one statement step per few hundred rows instead of one per row: about a tenth
less work per row, measured with callgrind). Reads of many keys at once take
one array parameter on PostgreSQL (``= ANY(%s)``) and on SQLite (``IN (SELECT
value FROM json_each(?))``: one statement whatever the count, nothing for
SQLAlchemy to compile per call), else ``IN (...)`` lists of at most
``SQL_PARAMS_MAX`` ids.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from itertools import chain
from typing import Any, Iterable, Iterator, Sequence

import orjson
from sqlalchemy import Connection, Table, and_, func, select, tuple_

from stockledger import limits
from stockledger.adapters.db import schema as s


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def chunks(items: Sequence[Any], size: int = limits.SQL_PARAMS_MAX) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


_INSERT_SQL: dict[tuple[str, tuple[str, ...], int], str] = {}
# SQLite's host-parameter limit: 32,766 since 3.32, 999 before
SQLITE_PARAMS_MAX = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
ROWS_PER_INSERT_MAX = 500
SQLITE_JSON = sqlite3.sqlite_version_info >= (3, 38)  # json_each built in


def _sqlite_array(conn: Connection) -> bool:
    """Can this connection take a list as one JSON parameter (SQLite 3.38+)?"""
    return SQLITE_JSON and conn.dialect.name == "sqlite"


def _json(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


def _with_array(conn: Connection, sql: str, params: tuple, values: Iterable[Any]
                ) -> list[Any] | None:
    """Run `sql`, written with `?` placeholders and one `= ANY(?)` taking the
    list `values` (after `params`), as one statement whatever the count:
    PostgreSQL takes the array as is, SQLite 3.38+ as JSON (``IN (SELECT value
    FROM json_each(?))``). None where neither works (older SQLite): the caller
    falls back to ``IN (...)`` lists."""
    if is_postgres(conn):
        return conn.exec_driver_sql(sql.replace("?", "%s"), (*params, list(values))).all()
    if _sqlite_array(conn):
        sql = sql.replace("= ANY(?)", "IN (SELECT value FROM json_each(?))")
        return conn.exec_driver_sql(sql, (*params, _json(values))).all()
    return None


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...],
                rows: Sequence[tuple]) -> None:
    """INSERT many rows given as tuples in `columns` order (COPY on PostgreSQL)."""
    if not rows:
        return
    if is_postgres(conn):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        cursor.close()
        return
    width = len(columns)
    per = max(1, min(ROWS_PER_INSERT_MAX, SQLITE_PARAMS_MAX // width))
    full = len(rows) - len(rows) % per
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if full:  # one statement's parameters at a time: no flat copy of all rows
            cursor.executemany(_values_sql(table.name, columns, per),
                               (list(chain.from_iterable(rows[i:i + per]))
                                for i in range(0, full, per)))
        if full < len(rows):  # the rest one by one: one more statement, not one per count
            cursor.executemany(_values_sql(table.name, columns, 1), rows[full:])
    finally:
        cursor.close()


def _values_sql(table: str, columns: tuple[str, ...], count: int) -> str:
    """INSERT INTO table (columns) VALUES (?, ...), ... with `count` rows (SQLite)."""
    key = (table, columns, count)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        one = "(" + ",".join(["?"] * len(columns)) + ")"
        sql = _INSERT_SQL[key] = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                  + ",".join([one] * count))
    return sql


def execute_many(conn: Connection, sql_sqlite: str, rows: Sequence[tuple]) -> None:
    """A parameterised statement written with '?' placeholders, run for many rows."""
    if not rows:
        return
    sql = sql_sqlite
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql_sqlite.replace("?", "%s")
    for part in chunks(rows, 5000):
        conn.exec_driver_sql(sql, list(part))


# -- planner statistics (PostgreSQL) ----------------------------------------------

# the tables posting reads by key while they grow
GROWING_TABLES = ("events", "event_refs", "movements", "journal_entries", "journal_lines",
                  "positions", "exceptions", "reversals")


def stale_statistics(conn: Connection) -> list[str]:
    """The growing tables whose planner statistics lag their contents (PostgreSQL).

    Without statistics the planner takes `ext_id = ANY(500 keys)` for
    unselective and reads the whole events table for each slice (0.3 s at
    600,000 events, measured); autovacuum normally keeps them current, but it
    can be off or behind. The rule is autovacuum's own: rows changed since the
    last ANALYZE (by anyone) above a floor plus a share of the table."""
    rows = conn.exec_driver_sql(
        "SELECT relname, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = ANY(%s)",
        (list(GROWING_TABLES),)).all()
    return sorted(name for name, changed, live in rows
                  if changed > limits.ANALYZE_ROWS_MIN + limits.ANALYZE_SHARE * live)


def try_lock(conn: Connection, name: str) -> bool:
    """A PostgreSQL advisory lock held to the end of the transaction, if free."""
    return bool(conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(hashtext(%s))",
                                     (name,)).scalar())


def analyze(conn: Connection, tables: Iterable[str]) -> None:
    for table in tables:
        if table not in GROWING_TABLES:
            raise ValueError(f"not a ledger table: {table}")
        conn.exec_driver_sql(f"ANALYZE {table}")


# -- id allocation -------------------------------------------------------------

def allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` fresh primary keys for `table` (arrival order for events).

    SQLite: the writer holds the database lock, so max(id)+1.. is safe.
    PostgreSQL: values from the table's identity sequence, safe under concurrency.
    """
    if count <= 0:
        return []
    if is_postgres(conn):
        seq = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')").scalar_one()
        rows = conn.exec_driver_sql(
            f"SELECT nextval('{seq}') FROM generate_series(1, {int(count)})").all()
        return [r[0] for r in rows]
    start = (conn.execute(select(func.max(table.c.id))).scalar() or 0) + 1
    return list(range(start, start + count))


def sync_sequences(conn: Connection, tables: Iterable[Table]) -> None:
    """After explicit ids were inserted on PostgreSQL nothing is needed (nextval
    handed them out); kept for symmetry with backends that need it."""
    return None


# -- master data -----------------------------------------------------------------

def code_ids(conn: Connection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, table in (("entities", s.entities), ("accounts", s.accounts), ("skus", s.skus),
                        ("locations", s.locations)):
        out[name] = {code: id_ for id_, code in conn.execute(select(table.c.id, table.c.code))}
    return out


def ensure_codes(conn: Connection, table: Table, codes: Iterable[str]) -> None:
    existing = {code for (code,) in conn.execute(select(table.c.code))}
    new = [code for code in dict.fromkeys(codes) if code not in existing]
    if new:
        conn.execute(table.insert(), [{"code": code} for code in new])


def latest_config(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(select(s.config_versions.c.id, s.config_versions.c.document)
                       .order_by(s.config_versions.c.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def latest_config_version(conn: Connection) -> int | None:
    return conn.execute(select(func.max(s.config_versions.c.id))).scalar()


def config_document(conn: Connection, version: int) -> str:
    return conn.execute(select(s.config_versions.c.document)
                        .where(s.config_versions.c.id == version)).scalar_one()


# -- events ------------------------------------------------------------------------

EVENT_COLUMNS = (s.events.c.id, s.events.c.source, s.events.c.ext_id, s.events.c.kind,
                 s.events.c.date_ymd, s.events.c.config_version, s.events.c.payload,
                 s.events.c.content_hash, s.events.c.ref_event_id)


_EVENT_FIELDS = "id, source, ext_id, kind, date_ymd, config_version, payload, content_hash, " \
    "ref_event_id"


def events_by_keys(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, ext_id in set(keys):
        by_source[source].append(ext_id)
    found: dict[tuple[str, str], Any] = {}
    for source, ids in by_source.items():
        rows = _with_array(conn, f"SELECT {_EVENT_FIELDS} FROM events "
                           "WHERE source = ? AND ext_id = ANY(?)", (source,), ids)
        if rows is None:
            rows = [row for part in chunks(ids) for row in conn.execute(
                select(*EVENT_COLUMNS).where(and_(s.events.c.source == source,
                                                  s.events.c.ext_id.in_(part)))).all()]
        for row in rows:
            found[(row.source, row.ext_id)] = row
    return found


def events_by_ids(conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
    ids = sorted(set(ids))
    rows = _with_array(conn, f"SELECT {_EVENT_FIELDS} FROM events WHERE id = ANY(?)", (), ids)
    if rows is None:
        rows = [row for part in chunks(ids) for row in conn.execute(
            select(*EVENT_COLUMNS).where(s.events.c.id.in_(part))).all()]
    return {row.id: row for row in rows}


def documents_of(conn: Connection, base_ids: Iterable[int]) -> list[Any]:
    """Events that refer to one of base_ids (through `ref`, or as one of a landed
    cost's `refs`), in (date, arrival) order."""
    rows: dict[int, Any] = {}
    for part in chunks(sorted(set(base_ids))):
        for row in conn.execute(select(*EVENT_COLUMNS).where(s.events.c.ref_event_id.in_(part))).all():
            rows[row.id] = row
        many = select(s.event_refs.c.event_id).where(s.event_refs.c.ref_event_id.in_(part))
        for row in conn.execute(select(*EVENT_COLUMNS).where(s.events.c.id.in_(many))).all():
            rows[row.id] = row
    return sorted(rows.values(), key=lambda r: (r.date_ymd, r.id))


def events_of_orders(conn: Connection, orders: Iterable[str]) -> list[Any]:
    """The events of these production orders, in (date, arrival) order."""
    rows: list[Any] = []
    for part in chunks(sorted(set(orders))):
        rows.extend(conn.execute(select(*EVENT_COLUMNS).where(s.events.c.order_ref.in_(part))).all())
    rows.sort(key=lambda r: (r.date_ymd, r.id))
    return rows


def reversed_among(conn: Connection, ids: Iterable[int]) -> set[int]:
    ids = sorted(set(ids))
    if not ids:
        return set()
    rows = _with_array(conn, "SELECT event_id FROM reversals WHERE event_id = ANY(?)", (), ids)
    if rows is None:
        rows = [row for part in chunks(ids) for row in conn.execute(
            select(s.reversals.c.event_id).where(s.reversals.c.event_id.in_(part)))]
    return {row[0] for row in rows}


def exceptions_by_keys(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, ext_id in set(keys):
        by_source[source].append(ext_id)
    found: dict[tuple[str, str], Any] = {}
    t = s.exceptions
    for source, ids in by_source.items():
        rows = _with_array(conn, "SELECT id, source, ext_id, content_hash, code, payload "
                           "FROM exceptions WHERE source = ? AND ext_id = ANY(?)", (source,), ids)
        if rows is None:
            rows = [row for part in chunks(ids) for row in conn.execute(
                select(t.c.id, t.c.source, t.c.ext_id, t.c.content_hash, t.c.code, t.c.payload)
                .where(and_(t.c.source == source, t.c.ext_id.in_(part))))]
        for row in rows:
            found[(row.source, row.ext_id)] = row
    return found


# -- movements ----------------------------------------------------------------------

def op_values(conn: Connection, event_ids: Iterable[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """Current (qty, value) of each own operation of the given events."""
    m = s.movements
    event_ids = sorted(set(event_ids))
    if not event_ids:
        return {}
    rows = _with_array(conn, "SELECT event_id, op_no, sum(qty_micro), sum(value_minor) "
                       "FROM movements WHERE producer_event_id = ANY(?) "
                       "AND producer_event_id = event_id AND kind != 'reversal' "
                       "GROUP BY event_id, op_no", (), event_ids)
    if rows is None:
        rows = [row for part in chunks(event_ids) for row in conn.execute(
            select(m.c.event_id, m.c.op_no, func.sum(m.c.qty_micro), func.sum(m.c.value_minor))
            .where(m.c.producer_event_id.in_(part), m.c.producer_event_id == m.c.event_id,
                   m.c.kind != "reversal")
            .group_by(m.c.event_id, m.c.op_no))]
    return {(event_id, op_no): (int(qty), int(value)) for event_id, op_no, qty, value in rows}


def key_history(conn: Connection, sku_id: int, location_id: int) -> list[tuple]:
    """Every own operation on one SKU at one location, current values, in order,
    with its event's kind; reversed events and reversal mirrors left out.

    One tuple an operation, its fields in the order of replay.OpRecord's: the
    movement rows of an operation (as posted, then its recosts) summed, the
    rest the largest value given. A re-run may put an operation's value on
    another layer (a landed cost's share follows the goods): each layer's part
    is an operation of its own. The rows are grouped here rather than by the
    database: a replay reads 100,000s of them, nearly all alone in their group,
    and SQLite's GROUP BY sorter took twice as long as the plain read."""
    m, e = s.movements, s.events
    rows = conn.execute(
        select(m.c.event_id, m.c.op_no, m.c.date_ymd, m.c.op, m.c.qty_micro, m.c.value_minor,
               m.c.layer_ref, m.c.lot, m.c.account_id, m.c.counter_account_id, m.c.entity_id,
               e.c.kind, m.c.param_qty_micro, m.c.param_value_minor, m.c.lineage)
        .select_from(m.join(e, e.c.id == m.c.event_id))
        .where(m.c.sku_id == sku_id, m.c.location_id == location_id,
               m.c.producer_event_id == m.c.event_id, m.c.kind != "reversal",
               m.c.event_id.not_in(select(s.reversals.c.event_id)))).all()
    groups: dict[tuple, tuple] = {}
    for row in rows:
        key = (row[2], row[0], row[1], row[6])  # date, event, op, layer
        seen = groups.get(key)
        groups[key] = tuple(row) if seen is None else _merge_movement(seen, row)
    return sorted(groups.values(), key=_date_event_op)


def _date_event_op(row: tuple) -> tuple:
    return row[2], row[0], row[1]


def _merge_movement(a: tuple, b: Any) -> tuple:
    """Two movement rows of one operation (key_history's columns) as one: op the
    smaller, qty and value summed, the rest the larger of those given."""
    rest = tuple(x if y is None else y if x is None else max(x, y) for x, y in zip(a[7:], b[7:]))
    return (a[0], a[1], a[2], min(a[3], b[3]), a[4] + b[4], a[5] + b[5], a[6], *rest)


def settling_events(conn: Connection, sku_id: int, location_id: int) -> set[int]:
    """Events whose inflows settled a shortfall on this SKU/location."""
    m = s.movements
    return {r[0] for r in conn.execute(
        select(m.c.producer_event_id).distinct()
        .where(m.c.sku_id == sku_id, m.c.location_id == location_id,
               m.c.producer_event_id != m.c.event_id, m.c.kind != "reversal"))}


def bases_with_documents(conn: Connection, event_ids: Iterable[int]) -> set[int]:
    """Those of `event_ids` that some document (bill, invoice, return) refers to."""
    e = s.events
    out: set[int] = set()
    for part in chunks(sorted(set(event_ids))):
        out.update(r[0] for r in conn.execute(
            select(e.c.ref_event_id).distinct().where(e.c.ref_event_id.in_(part))))
    return out


def produced_lines(conn: Connection, producer_ids: Iterable[int]) -> list[Any]:
    """Journal lines computed by the given events' evaluations (not mirrors)."""
    jl, je = s.journal_lines, s.journal_entries
    out: list[Any] = []
    for part in chunks(sorted(set(producer_ids))):
        out.extend(conn.execute(
            select(jl.c.event_id, jl.c.producer_event_id, jl.c.date_ymd, jl.c.entity_id,
                   jl.c.account_id, jl.c.sku_id, jl.c.location_id, jl.c.op_no,
                   func.sum(jl.c.amount_minor).label("amount"))
            .select_from(je.join(jl, jl.c.entry_id == je.c.id))
            .where(je.c.producer_event_id.in_(part), je.c.kind != "reversal")
            .group_by(jl.c.event_id, jl.c.producer_event_id, jl.c.date_ymd, jl.c.entity_id,
                      jl.c.account_id, jl.c.sku_id, jl.c.location_id, jl.c.op_no)).all())
    return out


def produced_moves(conn: Connection, producer_ids: Iterable[int]) -> list[Any]:
    m = s.movements
    out: list[Any] = []
    for part in chunks(sorted(set(producer_ids))):
        out.extend(conn.execute(
            select(m.c.event_id, m.c.op_no, m.c.producer_event_id, m.c.date_ymd,
                   func.sum(m.c.qty_micro).label("qty"), func.sum(m.c.value_minor).label("value"),
                   func.min(m.c.op).label("op"), m.c.sku_id, m.c.location_id,
                   func.max(m.c.entity_id).label("entity_id"),
                   func.max(m.c.account_id).label("account_id"),
                   func.max(m.c.counter_account_id).label("counter_id"),
                   m.c.layer_ref, func.max(m.c.lot).label("lot"))
            .where(m.c.producer_event_id.in_(part), m.c.kind != "reversal")
            .group_by(m.c.event_id, m.c.op_no, m.c.producer_event_id, m.c.date_ymd,
                      m.c.sku_id, m.c.location_id, m.c.layer_ref)).all())
    return out


# -- positions -----------------------------------------------------------------------

def positions_by_keys(conn: Connection, keys: Sequence[tuple[int, int]],
                      lock: bool = False) -> dict[tuple[int, int], Any]:
    p = s.positions
    found: dict[tuple[int, int], Any] = {}
    for part in chunks(list(keys), limits.SQL_PARAMS_MAX // 2):
        query = select(p.c.id, p.c.sku_id, p.c.location_id, p.c.version, p.c.state,
                       p.c.last_date_ymd).where(tuple_(p.c.sku_id, p.c.location_id).in_(part))
        if lock and is_postgres(conn):
            query = query.with_for_update()
        for row in conn.execute(query):
            found[(row.sku_id, row.location_id)] = row
    return found


def position_versions(conn: Connection, ids: Sequence[int], lock: bool = False) -> dict[int, int]:
    p = s.positions
    # SQLite needs no row locks: the writer holds the database
    lock_clause = " ORDER BY id FOR UPDATE" if lock and is_postgres(conn) else ""
    rows = _with_array(conn, f"SELECT id, version FROM positions WHERE id = ANY(?){lock_clause}",
                       (), ids)
    if rows is None:
        rows = [row for part in chunks(sorted(ids)) for row in conn.execute(
            select(p.c.id, p.c.version).where(p.c.id.in_(part)))]
    return {row[0]: row[1] for row in rows}


# -- periods ---------------------------------------------------------------------------

def closed_periods(conn: Connection) -> dict[int, int]:
    return {r[0]: r[1] for r in conn.execute(select(s.periods.c.entity_id,
                                                    s.periods.c.closed_through_ymd))}


# -- the hash chain -----------------------------------------------------------------------

def chain_head(conn: Connection, lock: bool = False) -> tuple[int, str]:
    """(seq, hash) of the chain's last entry; the lock serialises writers on PostgreSQL."""
    query = select(s.chain_head.c.chain_seq, s.chain_head.c.hash).where(s.chain_head.c.id == 1)
    if lock and is_postgres(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        from stockledger.domain.chain import GENESIS

        conn.execute(s.chain_head.insert(), [{"id": 1, "chain_seq": 0, "hash": GENESIS}])
        return (0, GENESIS)
    return (row[0], row[1])


def set_chain_head(conn: Connection, seq: int, digest: str) -> None:
    conn.execute(s.chain_head.update().where(s.chain_head.c.id == 1)
                 .values(chain_seq=seq, hash=digest))
