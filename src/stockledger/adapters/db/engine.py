"""Engines for SQLite (the embedded default) and PostgreSQL, and schema migration.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for writes, so one writer at a
time holds the lock from the start of its transaction (no deadlock on lock
upgrade) while readers keep reading. PostgreSQL uses row locks taken by the
services (``SELECT ... FOR UPDATE`` on the positions an event touches).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_URL = "sqlite:///stockledger.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(url: str | None) -> str:
    """--db, else $STOCKLEDGER_DB, else ./stockledger.db. A bare path means SQLite."""
    url = url or os.environ.get("STOCKLEDGER_DB") or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    return url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# CPython's sqlite3 binds a None parameter only after failed lookups of
# `__adapt__` and `__conform__` (about 0.5 us each, measured: a movement row
# has five NULLs); with an adapter registered for NoneType it finds one at once.
# `{}.get` is a C function that returns None, which sqlite3 binds as NULL.
sqlite3.register_adapter(type(None), {}.get)

WRITE_CACHE = -262144  # KiB: 256 MiB
WAL_AUTOCHECKPOINT_PAGES = 10_000
READ_CACHE = -2000  # SQLite's default


def make_engine(url: str, *, checkpoint_on_commit: bool = True) -> Engine:
    """`checkpoint_on_commit=False` (SQLite): this engine's connections leave the
    copying of the write-ahead log into the database file to a `Checkpointer`."""
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 60})
        autocheckpoint = WAL_AUTOCHECKPOINT_PAGES if checkpoint_on_commit else 0

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute(f"PRAGMA cache_size={WRITE_CACHE}")
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            # Posting wants a large page cache (positions, recent rows); a report scans
            # millions of rows once, and filling a large cache (or sorting in memory)
            # makes that scan 2-3x slower, so reads run on SQLite's defaults.
            reading = mode == "DEFERRED"
            conn.exec_driver_sql(f"PRAGMA cache_size={READ_CACHE if reading else WRITE_CACHE}")
            conn.exec_driver_sql(f"PRAGMA temp_store={'DEFAULT' if reading else 'MEMORY'}")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # Plans on PostgreSQL are only as good as the ledger tables' statistics:
    # posting refreshes them as the tables grow (Workspace.refresh_statistics).
    return create_engine(url, pool_pre_ping=True)


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)  # where the engine's first connection finds it


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file on a thread of its
    own, after each commit, while the posting thread goes on (decision 0015).

    Problem: with SQLite's automatic checkpoint, the commit that fills the log
    also copies it into the database file and syncs both, on the posting thread:
    8% of the time at a million events. sqlite3 lets go of the GIL while SQLite
    works, and a PASSIVE checkpoint neither waits for nor blocks the writer, so
    another connection can do that copy on the machine's other core.

    The log only starts over when a transaction begins with every frame in it
    copied, and a writer that begins again straight after its commit never sees
    that. So once the log holds more than `frames_max()` frames, the next write
    transaction waits for the last commit's copy before it begins (`before_write`),
    and then starts the log over. That bounds the log at about an eighth of the
    database (at least 64 MiB) plus two transactions, and the posting thread waits
    for part of one commit's copy in several.

    Nothing here is needed for correctness: a checkpoint that fails or is busy
    (another process checkpointing, a reader holding an old snapshot) leaves the
    frames in the log, where every reader finds them. The thread ends after
    `IDLE_SECONDS` without a commit, and at exit, so its connection is not the
    last one open and the last one still folds the log into the file."""

    FRAMES_FLOOR = 16_384  # 64 MiB of 4 KiB pages
    IDLE_SECONDS = 5.0

    def __init__(self, path: str) -> None:
        self.path = path
        self.frames = 0  # in the log after the last checkpoint
        self.db_pages = 0
        self.cpu_seconds = 0.0  # the thread's own, for benchmarks
        self.waited_seconds = 0.0  # the committing thread's, waiting for a copy
        self._cond = threading.Condition()
        self._requested = 0  # checkpoints asked for
        self._restart_after = 0  # the checkpoint the next write transaction waits for
        self._done = 0  # checkpoints finished (or given up)
        self._closing = False
        self._thread: threading.Thread | None = None
        _CHECKPOINTERS.add(self)

    def frames_max(self) -> int:
        return max(self.FRAMES_FLOOR, self.db_pages // 8)

    def after_commit(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stockledger-checkpoint",
                                                daemon=True)
                self._thread.start()
            self._requested += 1
            self._cond.notify_all()
            if self.frames > self.frames_max():
                self._restart_after = self._requested

    def before_write(self) -> None:
        """Before a write transaction: if the log is over its bound, wait until the
        last commit's frames are copied, so that this transaction starts the log
        over. Waiting here, not at the commit, lets the work between two
        transactions (gathering the next batch) overlap the copy."""
        if not self._restart_after:
            return
        started = time.perf_counter()
        with self._cond:
            while self._done < self._restart_after and self._thread is not None:
                self._cond.wait()
            self._restart_after = 0
        self.waited_seconds += time.perf_counter() - started

    def close(self) -> None:
        """Finish the checkpoint asked for, then end the thread (it starts again
        on the next commit)."""
        with self._cond:
            thread, self._closing = self._thread, True
            self._cond.notify_all()
        if thread is not None:
            thread.join()
        with self._cond:
            self._closing = False

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=1, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
                while self._checkpoint_next(conn):
                    pass
            finally:
                conn.close()
        finally:
            with self._cond:
                if self._thread is threading.current_thread():  # it failed: nobody waits for it
                    self._thread = None
                    self._done = self._requested
                    self._cond.notify_all()

    def _checkpoint_next(self, conn: sqlite3.Connection) -> bool:
        with self._cond:
            if self._done == self._requested and not self._closing:
                self._cond.wait(self.IDLE_SECONDS)
            if self._done == self._requested:  # closing, or idle
                self._thread = None
                return False
            wanted = self._requested
        cpu = time.thread_time()
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        except sqlite3.Error:  # busy or locked: the frames stay in the log
            frames, pages = self.frames, self.db_pages
        with self._cond:
            self.frames, self.db_pages = frames, pages
            self.cpu_seconds += time.thread_time() - cpu
            self._done = wanted
            self._cond.notify_all()
        return True


_CHECKPOINTERS: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


@atexit.register
def _close_checkpointers() -> None:
    for checkpointer in list(_CHECKPOINTERS):
        checkpointer.close()


def upgrade(url: str) -> None:
    """Create or upgrade the schema to the latest migration."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
