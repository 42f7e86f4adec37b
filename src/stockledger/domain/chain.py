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


def chain_rows(previous: str, seq: int, entry_rows: list[tuple], line_rows: list[tuple]
               ) -> tuple[list[tuple], int, str]:
    """Chain a run of new entries (the posting path): each entry row (id, event,
    kind, entity, date, cause, producer) gets (chain seq, hash) appended, its lines
    being the line rows (event, producer, date, entity, account, amount, sku,
    location, op, entry id) with its id, in order. The same hashes as
    ``entry_hash``, computed without building the lines' tuples first.
    Returns the chained rows and the last (seq, hash)."""
    texts: dict[int, list[str]] = {}
    line_format = _LINE
    for row in line_rows:
        entry_id = row[9]
        text = line_format % row[4:9]
        found = texts.get(entry_id)
        if found is None:
            texts[entry_id] = [text]
        else:
            found.append(text)
    chained = []
    append = chained.append
    blake2b = hashlib.blake2b
    entry_format = _ENTRY
    for entry in entry_rows:
        seq += 1
        body = texts.get(entry[0])
        text = previous + entry_format % entry + ("".join(body) if body else "")
        previous = blake2b(text.encode(), digest_size=32).hexdigest()
        append(entry + (seq, previous))
    return chained, seq, previous
