"""The pure accounting core: money and rounding, master data, events, valuation
states, document pools, the posting rules (one handler per event type) and the
replay that re-costs history. Standard library only: no I/O, no framework."""
