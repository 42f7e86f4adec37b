"""The crash test (SPEC 1: "a crash at any instant leaves either all of it or none of it").

A large stream is posted by `stockledger post` in a subprocess, which is killed
with SIGKILL once some batches have committed and while another is being
written. The database must then hold whole events only (each with a balanced
entry and its movements, nothing orphaned, stock positions equal to their
movements), reconcile, and re-posting the same file must complete it: what was
committed comes back as duplicates, the rest posts, and the result is exactly
the ledger of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

import pytest

from stockledger import limits
from stockledger.adapters.formats.requests import parse_event
from stockledger.service.bench import bench_setup, generate_stream
from stockledger.service.ingest import batch_sizes
from tests.cli.transcript import STOCKLEDGER, Cli

EVENTS = 60_000
KILL_AFTER_COMMIT_S = 0.6  # into a later batch (batches grow from 2,500 to 20,000 events)


def sql(db: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def scalar(db: Path, query: str) -> Any:
    return sql(db, query)[0][0]


def committed_batches(db: Path) -> int:
    try:
        return scalar(db, "SELECT count(*) FROM batches")
    except sqlite3.OperationalError:  # locked for a moment, or schema not visible yet
        return 0


def check_whole_events_only(db: Path) -> None:
    """Nothing half-posted and nothing orphaned."""
    # every entry balances
    assert sql(db, "SELECT entry_id, sum(amount_minor) FROM journal_lines GROUP BY entry_id "
                   "HAVING sum(amount_minor) != 0") == []
    # no line without its entry, no entry or movement without its event, no event without
    # its batch
    assert scalar(db, "SELECT count(*) FROM journal_lines WHERE entry_id NOT IN "
                      "(SELECT id FROM journal_entries)") == 0
    assert scalar(db, "SELECT count(*) FROM journal_entries WHERE event_id NOT IN "
                      "(SELECT id FROM events)") == 0
    assert scalar(db, "SELECT count(*) FROM journal_lines WHERE event_id NOT IN "
                      "(SELECT id FROM events)") == 0
    assert scalar(db, "SELECT count(*) FROM movements WHERE event_id NOT IN "
                      "(SELECT id FROM events)") == 0
    assert scalar(db, "SELECT count(*) FROM events WHERE batch_id NOT IN "
                      "(SELECT id FROM batches)") == 0
    assert scalar(db, "SELECT count(*) FROM journal_entries e WHERE NOT EXISTS "
                      "(SELECT 1 FROM journal_lines l WHERE l.entry_id = e.id)") == 0
    # every event has what its kind always produces: stock events their movements,
    # money events their posted entry
    assert sql(db, "SELECT id, kind FROM events WHERE kind IN ('receipt', 'shipment', "
                   "'transfer', 'adjustment', 'cycle_count') AND id NOT IN "
                   "(SELECT event_id FROM movements)") == []
    assert sql(db, "SELECT id, kind FROM events WHERE kind IN ('receipt', 'shipment', "
                   "'vendor_bill', 'customer_invoice', 'adjustment') AND id NOT IN "
                   "(SELECT event_id FROM journal_entries WHERE kind = 'post')") == []
    # derived stock positions were committed with the events: each equals its movements
    assert sql(db, """
        SELECT p.sku_id, p.location_id, p.qty_micro, p.value_minor, m.qty, m.value
        FROM positions p LEFT JOIN (
            SELECT sku_id, location_id, sum(qty_micro) AS qty, sum(value_minor) AS value
            FROM movements GROUP BY sku_id, location_id) m
          ON m.sku_id = p.sku_id AND m.location_id = p.location_id
        WHERE p.qty_micro != coalesce(m.qty, 0) OR p.value_minor != coalesce(m.value, 0)""") == []


def ledger(cli: Cli) -> dict[str, Any]:
    return {
        "trial_balance": cli.json("report", "trial-balance"),
        "valuation": cli.json("report", "valuation"),
        "exceptions": sorted((e["source"], e["id"], e["code"]) for e in
                             cli.json("exceptions", "list")),
    }


def test_sigkill_mid_post_leaves_whole_events_and_reposting_completes(tmp_path: Path) -> None:
    events_file = tmp_path / "stream.jsonl"
    with open(events_file, "wb") as handle:
        handle.writelines(line + b"\n" for line in generate_stream(EVENTS))
    lines = events_file.read_bytes().splitlines()
    assert len(lines) == EVENTS

    crashed = Cli(tmp_path / "crashed")
    reference = Cli(tmp_path / "reference")
    for cli in (crashed, reference):
        cli.dir.mkdir()
        cli.init(bench_setup())
    db = crashed.dir / "ws.db"

    # -- post, and kill it part-way ----------------------------------------------------------
    proc = subprocess.Popen(
        [STOCKLEDGER, "post", str(events_file), "--db", crashed.db, "--json"],
        cwd=crashed.dir, env=crashed.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group: the parser helper dies with it
    try:
        deadline = time.monotonic() + 120
        while committed_batches(db) < 1:
            assert proc.poll() is None, f"post ended before any batch was seen: {proc.returncode}"
            assert time.monotonic() < deadline, "no batch committed within 120 s"
            time.sleep(0.02)
        time.sleep(KILL_AFTER_COMMIT_S)
        assert proc.poll() is None, "the post finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # -- what the crash left: whole batches of whole events ----------------------------------------
    batches = committed_batches(db)
    events_before = scalar(db, "SELECT count(*) FROM events")
    queued_before = scalar(db, "SELECT count(*) FROM exceptions")
    ends = list(accumulate(islice(batch_sizes(limits.BATCH_EVENTS_MAX), EVENTS)))
    total_batches = next(n for n, end in enumerate(ends, 1) if end >= EVENTS)
    assert 1 <= batches < total_batches, f"{batches} of {total_batches} batches committed"
    done = ends[batches - 1]
    expected_keys = {(p.source, p.ext_id) for p in (parse_event(line) for line in lines[:done])}
    stored_keys = set(sql(db, "SELECT source, ext_id FROM events")) | \
        set(sql(db, "SELECT source, ext_id FROM exceptions"))
    print(f"killed after {batches} batch(es): {events_before} events, {queued_before} queued")
    assert events_before + queued_before == done
    assert stored_keys == expected_keys, "the database does not hold exactly the committed batches"
    check_whole_events_only(db)
    assert crashed.json("reconcile")["status"] == "balanced"

    # -- posting the same file again completes it ------------------------------------------------------
    again = crashed.json("post", str(events_file))
    assert again["posted"] + again["duplicates"] + again["exceptions"] == EVENTS
    assert again["duplicates"] == events_before + queued_before

    # -- and the result is the uninterrupted run's ledger -------------------------------------------------
    whole = reference.json("post", str(events_file))
    assert whole["posted"] + whole["exceptions"] == EVENTS
    assert again["posted"] == whole["posted"] - events_before
    assert again["exceptions"] == whole["exceptions"] - queued_before
    check_whole_events_only(db)
    assert scalar(db, "SELECT count(*) FROM events") == whole["posted"]
    assert crashed.json("reconcile")["status"] == "balanced"
    assert ledger(crashed) == ledger(reference)


def test_check_whole_events_only_catches_a_half_posted_event(tmp_path: Path) -> None:
    """The checker itself: remove one line of a posted entry and it must complain."""
    cli = Cli(tmp_path)
    cli.init(bench_setup(skus=2))
    cli.write("e.jsonl", [json.dumps({"id": "r1", "type": "receipt", "date": "2026-01-02",
                                      "location": "WH1", "sku": "SKU-00001", "qty": "3",
                                      "unit_cost": "2.00"})])
    cli.ok("post", "e.jsonl")
    db = tmp_path / "ws.db"
    check_whole_events_only(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM journal_lines WHERE id = (SELECT max(id) FROM journal_lines)")
    conn.close()
    with pytest.raises(AssertionError):
        check_whole_events_only(db)
