"""The hot paths build records from a tuple of all their fields (``tuple.__new__``),
which does not check the count: a field added to a record must be added there too."""

from __future__ import annotations

from stockledger.domain.evaluate import GLLine, Move
from stockledger.domain.events import Event, Line, Part


def test_record_shapes_the_fast_paths_rely_on() -> None:
    # resolve.complete: Event (20), Line (10), Part (4); evaluate.Emitter: Move (18), GLLine (9)
    assert len(Event._fields) == 20
    assert len(Line._fields) == 10
    assert len(Part._fields) == 4
    assert len(Move._fields) == 18
    assert len(GLLine._fields) == 9
