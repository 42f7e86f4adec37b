"""stockledger: inventory events in, a valued subledger and a balanced general ledger out."""

__version__ = "0.1.0"
