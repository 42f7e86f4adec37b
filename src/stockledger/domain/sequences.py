"""Per-source sequence numbers: which ones are missing.

Problem: a sender that numbers its events lets us notice a lost message, but
events may legitimately arrive out of order, so a gap is reported (never
fatal) and closes when the missing number turns up.
"""

from __future__ import annotations

from typing import Iterable

Gap = tuple[int, int]  # inclusive range of missing seqs
GAPS_KEPT_MAX = 1000  # only the latest ranges are kept beyond this


def record_seqs(gaps: list[Gap], last_seq: int | None, seqs: Iterable[int]) -> tuple[list[Gap], int | None]:
    """Gaps and highest seq after seeing `seqs` (in arrival order)."""
    gaps = list(gaps)
    for seq in seqs:
        if last_seq is None:
            last_seq = seq
            continue
        if seq > last_seq:
            if seq > last_seq + 1:
                gaps.append((last_seq + 1, seq - 1))
            last_seq = seq
            continue
        for i, (low, high) in enumerate(gaps):
            if low <= seq <= high:
                pieces = [(low, seq - 1)] if seq > low else []
                pieces += [(seq + 1, high)] if seq < high else []
                gaps[i:i + 1] = pieces
                break
    if len(gaps) > GAPS_KEPT_MAX:
        gaps = gaps[-GAPS_KEPT_MAX:]
    return gaps, last_seq


def missing_count(gaps: list[Gap]) -> int:
    return sum(high - low + 1 for low, high in gaps)
