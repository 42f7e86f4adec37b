"""The posting path's chaining (``chain_rows``) gives exactly the hashes that
``verify`` recomputes with ``entry_hash``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stockledger.domain.chain import GENESIS, chain_rows, entry_hash

small = st.integers(min_value=-10**12, max_value=10**12)
maybe = st.none() | st.integers(min_value=0, max_value=10**6)


@st.composite
def runs(draw):  # -> (entry rows, line rows)
    count = draw(st.integers(min_value=0, max_value=6))
    entries = [(100 + n, draw(small), draw(st.sampled_from(["post", "recost", "reversal"])),
                draw(small), draw(small), draw(small), draw(small)) for n in range(count)]
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=20))):
        entry_id = draw(st.sampled_from([e[0] for e in entries] or [999]))
        lines.append((draw(small), draw(small), draw(small), draw(small), draw(small),
                      draw(small), draw(maybe), draw(maybe), draw(maybe), entry_id))
    return entries, lines


@settings(max_examples=200, deadline=None)
@given(run=runs(), seq=st.integers(min_value=0, max_value=10**9))
def test_chain_rows_matches_entry_hash(run, seq: int) -> None:
    entries, lines = run
    chained, last_seq, last_hash = chain_rows(GENESIS, seq, entries, lines)
    previous = GENESIS
    for n, entry in enumerate(entries, 1):
        own = [(r[4], r[5], r[6], r[7], r[8]) for r in lines if r[9] == entry[0]]
        previous = entry_hash(previous, entry, own)
        assert chained[n - 1] == entry + (seq + n, previous)
    assert (last_seq, last_hash) == (seq + len(entries), previous)
