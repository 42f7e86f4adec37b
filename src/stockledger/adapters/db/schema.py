"""The database schema (SQLAlchemy Core). Alembic migrations create and upgrade it.

Conventions: amounts are BIGINT minor units (``*_minor``), quantities BIGINT
micro-units of the base UOM (``*_micro``), business dates INTEGER yyyymmdd
(``*_ymd``), so SQLite and PostgreSQL compute the same sums exactly.

The ledger (events, journal_entries, journal_lines, movements, reversals,
config_versions, *_log) is append-only. Derived state (positions, the
exception queue, sources, periods) is updated in place and can be rebuilt.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT primary keys that are plain INTEGER on SQLite (its rowid alias).
Id = BigInteger().with_variant(Integer(), "sqlite")

workspace_meta = Table(
    "workspace_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

config_versions = Table(
    "config_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("applied_at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("document", Text, nullable=False),  # the full setup, JSON
    Column("changes", Text, nullable=False),  # old -> new, JSON list
)

entities = Table(
    "entities", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(100), nullable=False, unique=True),
)
accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(100), nullable=False, unique=True),
)
skus = Table(
    "skus", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(200), nullable=False, unique=True),
)
locations = Table(
    "locations", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(100), nullable=False, unique=True),
)

events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True),  # arrival order (seq_arrival)
    Column("source", String(200), nullable=False),
    Column("ext_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("date_ymd", Integer, nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("ref_event_id", BigInteger),
    Column("order_ref", String(200)),  # production order (production_* events)
    Column("config_version", Integer, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON as received
    Column("batch_id", BigInteger, nullable=False),
    UniqueConstraint("source", "ext_id", name="uq_events_source_ext_id"),
)
Index("ix_events_ref_event_id", events.c.ref_event_id,
      sqlite_where=events.c.ref_event_id.is_not(None),
      postgresql_where=events.c.ref_event_id.is_not(None))

Index("ix_events_order_ref", events.c.order_ref,
      sqlite_where=events.c.order_ref.is_not(None),
      postgresql_where=events.c.order_ref.is_not(None))

event_refs = Table(
    "event_refs", metadata,  # every event a document refers to (landed costs refer to several)
    Column("event_id", BigInteger, primary_key=True),
    Column("ref_event_id", BigInteger, primary_key=True),
)
Index("ix_event_refs_ref_event_id", event_refs.c.ref_event_id)

batches = Table(
    "batches", metadata,
    Column("id", Id, primary_key=True),
    Column("committed_at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("origin", String(200), nullable=False),
)

reversals = Table(
    "reversals", metadata,
    Column("event_id", Id, primary_key=True),  # the reversed event
    Column("reversal_event_id", BigInteger, nullable=False),
    Column("reversed_at", String(32), nullable=False),
)

journal_entries = Table(
    "journal_entries", metadata,
    Column("id", Id, primary_key=True),
    Column("event_id", BigInteger, nullable=False),  # the event the entry belongs to
    Column("kind", String(16), nullable=False),  # post | recost | reversal
    Column("entity_id", Integer, nullable=False),
    Column("date_ymd", Integer, nullable=False),
    Column("cause_event_id", BigInteger, nullable=False),  # what made it (itself for a post)
    Column("producer_event_id", BigInteger, nullable=False),  # whose evaluation computed it
    Column("chain_seq", BigInteger, nullable=False),  # position in the tamper-evident chain
    Column("hash", String(64), nullable=False),  # over its content and its predecessor's hash
    UniqueConstraint("chain_seq", name="uq_journal_entries_chain_seq"),
)

chain_head = Table(
    "chain_head", metadata,  # one row: the last entry of the chain
    Column("id", Integer, primary_key=True),
    Column("chain_seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_journal_entries_event_id", journal_entries.c.event_id)
Index("ix_journal_entries_producer_event_id", journal_entries.c.producer_event_id)
Index("ix_journal_entries_cause_event_id", journal_entries.c.cause_event_id,
      sqlite_where=journal_entries.c.kind != "post",
      postgresql_where=journal_entries.c.kind != "post")

journal_lines = Table(
    "journal_lines", metadata,
    Column("id", Id, primary_key=True),
    Column("entry_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("producer_event_id", BigInteger, nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("date_ymd", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # > 0 debit, < 0 credit
    Column("sku_id", Integer),
    Column("location_id", Integer),
    Column("op_no", Integer),  # the stock or document operation; NULL for fixed amounts
)
Index("ix_journal_lines_entry_id", journal_lines.c.entry_id)

movements = Table(
    "movements", metadata,
    Column("id", Id, primary_key=True),
    Column("event_id", BigInteger, nullable=False),
    Column("op_no", Integer, nullable=False),
    Column("producer_event_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # post | recost | reversal
    Column("op", SmallInteger, nullable=False),  # see domain.evaluate.Op
    Column("date_ymd", Integer, nullable=False),
    Column("sku_id", Integer, nullable=False),
    Column("location_id", Integer, nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("counter_account_id", Integer),
    Column("qty_micro", BigInteger, nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    Column("layer_ref", BigInteger),
    Column("lot", String(200)),
    Column("param_qty_micro", BigInteger),
    Column("param_value_minor", BigInteger),
    Column("lineage", Text),  # transfer-in: the receipt layers its units came from, JSON
)
Index("ix_movements_key", movements.c.sku_id, movements.c.location_id)
Index("ix_movements_producer_event_id", movements.c.producer_event_id)

positions = Table(
    "positions", metadata,
    Column("id", Integer, primary_key=True),
    Column("sku_id", Integer, nullable=False),
    Column("location_id", Integer, nullable=False),
    Column("qty_micro", BigInteger, nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    Column("last_date_ymd", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("state", Text, nullable=False),  # layers / pool / shortfalls, JSON
    UniqueConstraint("sku_id", "location_id", name="uq_positions_sku_id_location_id"),
)

exceptions = Table(
    "exceptions", metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(200), nullable=False),
    Column("ext_id", String(200), nullable=False),
    Column("code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("first_seen_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    UniqueConstraint("source", "ext_id", name="uq_exceptions_source_ext_id"),
)

exception_log = Table(
    "exception_log", metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(200), nullable=False),
    Column("ext_id", String(200), nullable=False),
    Column("action", String(16), nullable=False),  # discarded | posted
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", String(32), nullable=False),
    Column("payload", Text, nullable=False),
)

sources = Table(
    "sources", metadata,
    Column("source", String(200), primary_key=True),
    Column("events_posted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("conflicts", BigInteger, nullable=False),
    Column("exceptions", BigInteger, nullable=False),
    Column("last_seq", BigInteger),
    Column("gaps", Text, nullable=False),  # JSON [[from, to], ...] of missing seqs
)

periods = Table(
    "periods", metadata,
    Column("entity_id", Integer, primary_key=True),
    Column("closed_through_ymd", Integer, nullable=False),
)

period_log = Table(
    "period_log", metadata,
    Column("id", Id, primary_key=True),
    Column("entity_id", Integer, nullable=False),
    Column("action", String(16), nullable=False),  # close | reopen
    Column("through_ymd", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", String(32), nullable=False),
)
