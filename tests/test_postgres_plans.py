"""PostgreSQL plans must follow the tables' real size.

psycopg prepares a statement after five runs; a generic plan chosen while the
events table was small (a sequential scan) stays cached until an ANALYZE, and
where autovacuum is off nothing runs one: posting fell to ~270 events/s by
100,000 events. The engine asks for custom plans on every connection."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from stockledger.adapters.db.engine import make_engine


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_connections_plan_each_statement_for_its_parameters(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE grow (k text PRIMARY KEY, v int)"))
            conn.execute(text("ALTER TABLE grow SET (autovacuum_enabled = false)"))
            lookup = text("SELECT v FROM grow WHERE k = ANY(:keys)")
            for _ in range(8):  # past psycopg's prepare threshold while the table is empty
                conn.execute(lookup, {"keys": ["a", "b"]}).all()
            conn.execute(text("INSERT INTO grow SELECT 'k' || i, i FROM generate_series(1, 200000) i"))
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            plan = "\n".join(r[0] for r in conn.execute(
                text("EXPLAIN SELECT v FROM grow WHERE k = ANY(:keys)"), {"keys": ["k5", "k7"]}))
            assert "Index" in plan, plan
            assert sorted(conn.execute(lookup, {"keys": ["k5", "k7"]}).scalars()) == [5, 7]
    finally:
        engine.dispose()
