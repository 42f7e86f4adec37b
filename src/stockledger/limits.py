"""Named limits, in one place (STYLE 14)."""

QTY_UNITS_MAX = 10**9  # per line, in base units
UNIT_PRICE_MAX = 10**9  # per unit, in currency units
AMOUNT_UNITS_MAX = 10**14  # per line, in currency units (fits int64 minor units with room)
LINES_MAX = 1000  # lines per event
COMPONENTS_MAX = 60  # components of a kit or bundle (op slots per line are 64)
ID_LENGTH_MAX = 200  # event id, source, lot, reason
BATCH_EVENTS_MAX = 20000  # events per transaction when posting a stream
BATCH_EVENTS_FIRST = 2500  # the first transaction's; each next one twice as large, up to the max
SLICE_EVENTS_MAX = 2500  # events resolved and written together inside a transaction
SQL_PARAMS_MAX = 900  # ids in one IN (...) list
# PostgreSQL: a ledger table is re-analyzed once this many rows plus this share of
# its size changed since its statistics were last taken (autovacuum's rule, scaled)
ANALYZE_ROWS_MIN = 10_000
ANALYZE_SHARE = 0.2
EVENT_BYTES_MAX = 1_000_000  # one JSON line
