"""The tamper-evident chain over journal entries.

Problem: an auditor must be able to tell whether a posted amount was changed
afterwards, directly in the database. Each entry carries a hash over its own
content (the entry and its lines) and the hash of the entry before it in the
chain, so changing any amount, account or link breaks every hash from there
on; `verify` recomputes the chain and names the first entry that no longer
matches.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

GENESIS = "0" * 64  # the predecessor of the first entry


_ENTRY = "\n" + "|".join(["%s"] * 7)  # id, event, kind, entity, date, cause, producer
_LINE = "\n" + "|".join(["%s"] * 5)  # account, amount, sku, location, op


def entry_hash(previous: str, entry: tuple, lines: Iterable[tuple]) -> str:
    """blake2b-256 over the predecessor's hash, the entry (id, event, kind,
    entity, date, cause, producer) and its lines (account, amount, sku,
    location, op) in order: one text line each, fields as ``str`` gives them,
    joined by ``|``."""
    text = previous + _ENTRY % tuple(entry) + "".join([_LINE % tuple(line) for line in lines])
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()
