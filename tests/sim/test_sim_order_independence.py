"""Issue 4's strongest property: arrival order does not change the books.

The strict generator makes streams whose every event is valid at its arrival
*and* in date order (receipts, bills, vendor credits, positive adjustments,
returns and counts may arrive backdated; outflows only take what the
date-ordered history holds; no reversals). Posting such a stream in its
shuffled arrival order - with its backdating, replays and recost entries - must
end in the same books as posting the same events, sorted by date (stable by
arrival), into a fresh workspace where nothing is ever backdated:

* every event posts in both workspaces;
* valuation lines (qty and value per SKU/location) and the trial balance per
  account are equal, as of every date of the stream and as of now;
* the value of every FIFO SKU/location equals a naive FIFO auditor's: layers
  rebuilt from the date-ordered events with the SPEC 5 take rule
  (round_half_up(V*q/Q, 2) per layer take; taking all takes exactly V), and
  the whole of the auditor's books (all methods, every account) match too.
"""

from __future__ import annotations

from hypothesis import given

from tests.sim import auditor, checks
from tests.sim.minimize import run_check
from tests.sim.streams import PRODUCTS, Ev, Stream, day, streams
from tests.sim.test_sim_streams import examples, run_seeded, sim_seeds, sim_settings

FIFO_SKUS = tuple(sku for sku, (_, method, _, _) in PRODUCTS.items() if method == "fifo")


def post_all(backend: str, stream: Stream, label: str, dates: list[int]
             ) -> tuple[list[Ev], dict, dict]:
    """Post the stream; every event must post. Returns the posted events and the
    valuation and trial balance as of every date (key None: now)."""
    with checks.fresh_workspace(backend) as ws:
        posted = checks.post_all_valid(ws, stream, label)
        rep = checks.Reports(ws)
        checks.check_entries_balance(ws)
        checks.check_conservation(rep)
        checks.check_reconcile(rep, dates)
        # the naive FIFO auditor first (FIFO layers, take rule), then all of the books
        checks.check_against_auditor(rep, posted, dates, skus=FIFO_SKUS)
        checks.check_against_auditor(rep, posted, dates)
        valuations = {d: rep.valuation(d) for d in [*dates, None]}
        balances = {d: rep.trial_balance(d)[0] for d in [*dates, None]}
    return posted, valuations, balances


class NotAlwaysValid(Exception):
    """The stream itself breaks the premise (a generator bug, or a minimiser trial)."""


def check_order_independence(backend: str, stream: Stream) -> None:
    predicted = auditor.predict(stream.events)
    invalid = {k: v for k, v in predicted.items() if v[0] != "posted"}
    if invalid:
        raise NotAlwaysValid(f"the auditor rejects events of this strict stream: {invalid}")
    dates = stream.dates()
    _, val_arrival, tb_arrival = post_all(backend, stream, "arrival order", dates)
    in_date_order = sorted(stream.events, key=lambda e: (e.date, e.n))
    sorted_stream = Stream(in_date_order, [len(in_date_order)], stream.skus, True)
    _, val_sorted, tb_sorted = post_all(backend, sorted_stream, "date order", dates)
    for as_of in [*dates, None]:
        when = day(as_of) if as_of else "now"
        assert val_arrival[as_of] == val_sorted[as_of], (
            f"valuation as of {when}: posted in arrival order vs in date order "
            f"(qty, value in cents):\n" + checks.diff(val_sorted[as_of], val_arrival[as_of])
            .replace("auditor", "date order").replace("engine", "arrival order"))
        assert tb_arrival[as_of] == tb_sorted[as_of], (
            f"trial balance as of {when}: posted in arrival order vs in date order (cents):\n"
            + checks.diff(tb_sorted[as_of], tb_arrival[as_of])
            .replace("auditor", "date order").replace("engine", "arrival order"))


def test_arrival_order_does_not_change_the_books(backend: str) -> None:
    @sim_settings(examples(backend))
    @given(stream=streams(strict=True))
    def shuffled_stream(stream: Stream) -> None:
        run_check(check_order_independence, backend, stream)

    shuffled_stream()


def test_seeded_arrival_order_does_not_change_the_books() -> None:
    """Fresh seeds every run (a failure names its seed), on SQLite."""
    for seed in sim_seeds(1):
        run_seeded(seed, True, check_order_independence)
