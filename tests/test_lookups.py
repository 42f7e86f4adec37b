"""The key lookups posting runs take the whole key list as one array parameter
(PostgreSQL, SQLite 3.38+) or, on older SQLite, IN lists in chunks: both
paths must find the same rows."""

from __future__ import annotations

from typing import Any

import pytest

from stockledger.adapters.db import store
from stockledger.service.bench import generate_stream
from stockledger.service.ingest import parse_lines, post_events

EVENTS = 1500


def _lookups(ws: Any) -> dict[str, Any]:
    with ws.read() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM events").all()]
        position_ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM positions").all()]
        queued = [tuple(row) for row in conn.exec_driver_sql(
            "SELECT source, ext_id FROM exceptions").all()]
        keys = [("default", f"e{n}") for n in range(0, EVENTS + 50, 3)] + queued
        plain = lambda rows: {k: tuple(v) for k, v in rows.items()}  # noqa: E731
        return {
            "events_by_keys": plain(store.events_by_keys(conn, keys)),
            "events_by_ids": plain(store.events_by_ids(conn, ids[::2] + [10**9])),
            "exceptions_by_keys": plain(store.exceptions_by_keys(conn, keys)),
            "reversed_among": store.reversed_among(conn, ids),
            "op_values": store.op_values(conn, ids),
            "position_versions": store.position_versions(conn, position_ids),
        }


def test_array_and_chunked_lookups_find_the_same_rows(make_workspace, monkeypatch) -> None:
    from stockledger.service.bench import bench_setup

    ws = make_workspace(bench_setup(skus=40))
    post_events(ws, parse_lines(generate_stream(EVENTS, 3, skus=40)))
    arrays = _lookups(ws)
    monkeypatch.setattr(store, "SQLITE_JSON", False)
    monkeypatch.setattr(store, "is_postgres", lambda conn: False)  # PostgreSQL too: IN lists
    chunked = _lookups(ws)
    for name, found in arrays.items():
        assert found == chunked[name], name
    assert arrays["events_by_keys"] and arrays["op_values"] and arrays["position_versions"]
    assert arrays["exceptions_by_keys"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_empty_key_lists_read_nothing(make_workspace) -> None:
    ws = make_workspace()
    with ws.read() as conn:
        assert store.events_by_keys(conn, []) == {}
        assert store.events_by_ids(conn, []) == {}
        assert store.reversed_among(conn, []) == set()
        assert store.op_values(conn, []) == {}
