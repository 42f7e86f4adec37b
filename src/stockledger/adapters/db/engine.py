"""Engines for SQLite (the embedded default) and PostgreSQL, and schema migration.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for writes, so one writer at a
time holds the lock from the start of its transaction (no deadlock on lock
upgrade) while readers keep reading. PostgreSQL uses row locks taken by the
services (``SELECT ... FOR UPDATE`` on the positions an event touches).
"""

from __future__ import annotations

import os
import sqlite3
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
READ_CACHE = -2000  # SQLite's default


def make_engine(url: str) -> Engine:
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute(f"PRAGMA cache_size={WRITE_CACHE}")
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
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
