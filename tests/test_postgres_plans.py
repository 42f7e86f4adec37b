"""PostgreSQL must plan key lookups on the ledger tables with statistics.

Without statistics the planner takes `ext_id = ANY(500 keys)` for
unselective and reads the whole events table for every slice: with
autovacuum off, posting fell from ~4,700 to ~2,000 events/s between 100,000
and 1,000,000 events. Posting refreshes the statistics of the tables that grew
(autovacuum's rule), whoever else maintains them or not."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from stockledger.adapters.db import store

ROWS = 30_000


def _lookup_plan(conn) -> str:  # noqa: ANN001
    keys = [f"x{i}" for i in range(1000, 1050)]
    return "\n".join(r[0] for r in conn.execute(
        text("EXPLAIN SELECT id FROM events WHERE source = 'bulk' AND ext_id = ANY(:keys)"),
        {"keys": keys}))


def _wait_for_counters(ws) -> None:  # noqa: ANN001
    for _ in range(50):  # the server publishes table counters about once a second
        with ws.read() as conn:
            if "events" in store.stale_statistics(conn):
                return
        time.sleep(0.1)


def _uses_key_index(plan: str) -> bool:
    return any("Index Cond" in line and "ext_id" in line for line in plan.splitlines())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_posting_refreshes_statistics_of_grown_tables(make_workspace) -> None:
    ws = make_workspace()
    with ws.write() as conn:
        conn.execute(text("ALTER TABLE events SET (autovacuum_enabled = false)"))
        conn.execute(text(
            "INSERT INTO events (id, source, ext_id, kind, date_ymd, entity_id, config_version, "
            "content_hash, payload, batch_id) SELECT g, 'bulk', 'x' || g, 'receipt', 20250101, 1, "
            f"1, 'h', '{{}}', 1 FROM generate_series(1, {ROWS}) g"))
    with ws.read() as conn:  # before: the ext_ids are only a filter over the whole table
        assert not _uses_key_index(_lookup_plan(conn))
    _wait_for_counters(ws)
    assert "events" in ws.refresh_statistics()
    with ws.read() as conn:
        plan = _lookup_plan(conn)
        assert _uses_key_index(plan), plan
        analyzed = conn.execute(text(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'events' AND schemaname = current_schema()")).scalar()
        assert analyzed
        assert "events" not in store.stale_statistics(conn)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_needs_no_statistics(make_workspace) -> None:
    ws = make_workspace()
    assert ws.refresh_statistics() == []


def test_only_ledger_tables_are_analyzed() -> None:
    with pytest.raises(ValueError):
        store.analyze(None, ["accounts; DROP TABLE events"])  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_positions_leave_room_for_updated_versions(make_workspace) -> None:
    # every batch rewrites the positions it touched: on half-full pages the new
    # version stays on its page (a HOT update) and needs no VACUUM to go away
    ws = make_workspace()
    with ws.read() as conn:
        options = conn.execute(text(
            "SELECT reloptions FROM pg_class WHERE relname = 'positions' "
            "AND relnamespace = current_schema()::regnamespace")).scalar()
    assert "fillfactor=50" in options


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_one_process_analyzes_at_a_time(make_workspace) -> None:
    ws = make_workspace()
    with ws.write() as conn:
        conn.execute(text(
            "INSERT INTO events (id, source, ext_id, kind, date_ymd, entity_id, config_version, "
            "content_hash, payload, batch_id) SELECT g, 'bulk', 'x' || g, 'receipt', 20250101, 1, "
            f"1, 'h', '{{}}', 1 FROM generate_series(1, {ROWS}) g"))
    _wait_for_counters(ws)
    other = ws.engine.connect()
    try:
        with other.begin():  # another process is analyzing: this one goes on
            assert store.try_lock(other, "stockledger analyze")
            assert ws.refresh_statistics() == []
        assert ws.refresh_statistics() == ["events"]
    finally:
        other.close()
