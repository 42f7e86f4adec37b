"""Event-level minimisation of a failing stream (delta debugging, greedy).

Problem: Hypothesis shrinks the *choices* that built a stream, but each run
posts into a fresh database, and its shrinker stops after five minutes, often
with a stream of twenty events where four would do. Once a failure is final,
this removes whole events (and merges the posting chunks) as long as the
stream still fails *the same way* (same invariant, same exception), which
takes seconds, and the result is printed as JSON lines beside Hypothesis's.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from dataclasses import replace

from tests.sim.streams import Ev, Stream

Check = Callable[[str, Stream], None]
BUDGET_SECONDS = 90


def signature(exc: BaseException) -> str:
    """What kind of failure: the invariant's label, or the exception and where
    in stockledger it was raised (dates, ids and figures left out)."""
    if isinstance(exc, AssertionError):
        head = str(exc).split("\n")[0].split(":")[0]
        head = re.sub(r"\d{4}-\d\d-\d\d", "D", head)
        head = re.sub(r"\be\d+\b", "E", head)
        return re.sub(r"-?\d+", "N", head)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "stockledger" in f.filename]
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def failure(check: Check, backend: str, stream: Stream) -> str | None:
    try:
        check(backend, stream)
    except Exception as exc:  # noqa: BLE001 - a crash is minimised too
        return signature(exc)
    return None


def _stream(events: list[Ev], chunk_of: list[int], like: Stream) -> Stream:
    """A smaller stream of the same kind (class, SKUs, strictness, policy)."""
    sizes = [chunk_of.count(c) for c in sorted(set(chunk_of))]
    return replace(like, events=events, chunks=sizes or [0])


def minimize(check: Check, backend: str, stream: Stream, wanted: str) -> Stream:
    """The smallest stream found (within the budget) failing with `wanted`."""
    deadline = time.monotonic() + BUDGET_SECONDS
    events = list(stream.events)
    chunk_of = [i for i, size in enumerate(stream.chunks) for _ in range(size)]

    def fails(evs: list[Ev], chs: list[int]) -> bool:
        return failure(check, backend, _stream(evs, chs, stream)) == wanted

    if len(set(chunk_of)) > 1 and fails(events, [0] * len(events)):
        chunk_of = [0] * len(events)
    step = max(1, len(events) // 4)
    while step >= 1 and time.monotonic() < deadline:
        changed = False
        i = len(events) - step
        while i >= 0 and time.monotonic() < deadline:
            trial_events = events[:i] + events[i + step:]
            trial_chunks = chunk_of[:i] + chunk_of[i + step:]
            if trial_events and fails(trial_events, trial_chunks):
                events, chunk_of, changed = trial_events, trial_chunks, True
            i -= step
        if not changed:
            step //= 2
    return _stream(events, chunk_of, stream)


def final_replay() -> bool:
    """True while Hypothesis replays the failing example it will report."""
    from hypothesis.control import current_build_context
    from hypothesis.errors import InvalidArgument

    try:
        return current_build_context().is_final
    except InvalidArgument:  # not inside a Hypothesis test
        return False


def run_check(check: Check, backend: str, stream: Stream) -> None:
    """check(backend, stream); when it fails for good, also print a minimal stream."""
    try:
        check(backend, stream)
    except Exception as exc:
        if final_replay():
            from hypothesis import note

            small = minimize(check, backend, stream, signature(exc))
            note(f"Minimal stream failing the same way ({signature(exc)}), "
                 f"{len(small.events)} events:\n{small!r}")
        raise
