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


def entry_hash(previous: str, entry: tuple, lines: Iterable[tuple]) -> str:
    """blake2b-256 over the predecessor's hash, the entry (id, event, kind,
    entity, date, cause, producer) and its lines (account, amount, sku,
    location, op) in order."""
    parts = [previous, "|".join(map(str, entry))]
    parts.extend("|".join(map(str, line)) for line in lines)
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=32).hexdigest()
