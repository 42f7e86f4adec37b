"""On SQLite, a thread of the workspace's own copies the write-ahead log into
the database file after each commit (engine.Checkpointer, decision 0015). The
log must stay bounded (it only starts over when a transaction begins with all
of it copied), every committed event must be there afterwards, and the log must
still be folded into the file when the workspace closes."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from stockledger.adapters.db.engine import Checkpointer
from stockledger.service.bench import bench_setup, generate_stream
from stockledger.service.ingest import parse_lines, post_events
from stockledger.service.reports import reconcile
from stockledger.service.workspace import Workspace, check_setup, init_workspace

SKUS = 50


@pytest.fixture
def workspace(tmp_path: Path):  # noqa: ANN201
    ws = Workspace(f"sqlite:///{tmp_path / 'ledger.db'}")
    init_workspace(ws, check_setup(bench_setup(skus=SKUS)))
    yield ws
    ws.close()


def _wal_frames(path: str) -> tuple[int, int]:
    """(frames in the log, frames copied into the file), read by a PASSIVE
    checkpoint on a connection of the test's own."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _, log, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return log, copied
    finally:
        conn.close()


def _wait_done(checkpointer: Checkpointer) -> None:
    for _ in range(400):
        if checkpointer._done == checkpointer._requested:
            return
        time.sleep(0.01)
    raise AssertionError("the checkpoint asked for did not finish")


def _wait_idle(checkpointer: Checkpointer) -> None:
    for _ in range(400):
        if checkpointer._thread is None:
            return
        time.sleep(0.01)
    raise AssertionError("the checkpoint thread did not end when idle")


def test_the_posting_connection_leaves_the_log_to_the_checkpointer(workspace: Workspace) -> None:
    assert workspace.checkpointer is not None
    with workspace.write() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_the_log_stays_bounded_and_every_event_is_kept(workspace: Workspace,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """About 90 frames a commit, twenty commits: without restarts the log would
    pass 1,500 frames."""
    monkeypatch.setattr(Checkpointer, "FRAMES_FLOOR", 300)
    checkpointer = workspace.checkpointer
    assert checkpointer is not None
    seen: list[int] = []
    stream = generate_stream(3000, seed=5, skus=SKUS)
    summary = post_events(workspace, parse_lines(stream), batch_size=150,
                          progress=lambda _n: seen.append(checkpointer.frames))
    assert summary.posted + summary.exceptions == 3000
    assert summary.posted > 2900
    assert any(later < earlier for earlier, later in zip(seen, seen[1:]))  # it started over
    assert max(seen) <= 3 * 300  # the bound, one commit, and one commit of lag
    assert reconcile(workspace)["status"] == "balanced"
    conn = sqlite3.connect(checkpointer.path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == summary.posted
    finally:
        conn.close()


def test_over_the_bound_the_next_transaction_waits_for_the_copy(workspace: Workspace) -> None:
    checkpointer = workspace.checkpointer
    assert checkpointer is not None
    post_events(workspace, parse_lines(generate_stream(200, seed=4, skus=SKUS)))
    assert checkpointer.waited_seconds == 0
    _wait_done(checkpointer)
    checkpointer.frames = checkpointer.frames_max() + 1  # as if the log had grown past it
    post_events(workspace, parse_lines(generate_stream(200, seed=6, skus=SKUS)))
    assert checkpointer.waited_seconds == 0  # not at the commit: before the next transaction
    with workspace.write():
        assert checkpointer._done == checkpointer._requested  # the copy had finished
    assert checkpointer.waited_seconds > 0
    assert checkpointer.frames < checkpointer.frames_max()


def test_the_thread_copies_everything_then_ends_when_idle(workspace: Workspace,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Checkpointer, "IDLE_SECONDS", 0.05)
    checkpointer = workspace.checkpointer
    assert checkpointer is not None
    for seed in (1, 2):  # the thread starts again on the next commit
        stream = generate_stream(300, seed=seed, skus=SKUS)
        post_events(workspace, parse_lines(stream), batch_size=100)
        _wait_idle(checkpointer)
        log, copied = _wal_frames(checkpointer.path)
        assert log > 0 and copied == log  # all of it in the database file
    assert checkpointer.cpu_seconds > 0
    assert checkpointer.waited_seconds == 0  # far below the bound: never waited for
    assert reconcile(workspace)["status"] == "balanced"


def test_closing_folds_the_log_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Workspace(f"sqlite:///{path}") as ws:
        init_workspace(ws, check_setup(bench_setup(skus=SKUS)))
        stream = generate_stream(500, seed=9, skus=SKUS)
        summary = post_events(ws, parse_lines(stream), batch_size=100)
    assert not os.path.exists(f"{path}-wal")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == summary.posted
    finally:
        conn.close()
