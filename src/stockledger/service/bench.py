"""Benchmarks that print figures (`stockledger bench post|backdate`).

`bench post` generates a realistic stream (1,000 SKUs over 5 locations, half
FIFO and half moving average, receipts with their vendor bills, shipments with
their customer invoices, transfers, adjustments, counts, and a few bad events)
into a JSON-lines file, then posts that file into a fresh workspace through
exactly the code path of `stockledger post`, timing only the posting.

`bench backdate` builds one SKU's history at one location (half receipts at
varying costs, half shipments), then posts one receipt dated before all of
it and times the re-costing; it also times ordinary events on that long
history and a backdated event with nothing after it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Iterator

import orjson

from stockledger.adapters.db.engine import is_sqlite, resolve_url
from stockledger.service.ingest import parse_file, parse_lines, post_events
from stockledger.service.workspace import Workspace, check_setup, init_workspace

SKUS = 1000
LOCATIONS = ("WH1", "WH2", "WH3", "WH4", "WH5")
KITS = 50  # assembled from 2 FIFO SKUs each
FINISHED = 20  # finished goods made by production orders


def _kit(k: int, skus: int) -> list[tuple[int, int]]:
    """The components of kit k: two FIFO (odd-numbered) SKUs, 1 or 2 of each."""
    first = (2 * k * 7 + 1) % skus
    second = (2 * k * 13 + 3) % skus
    return [(first | 1, 1 + k % 2), (second | 1, 2 - k % 2)]


def bench_setup(skus: int = SKUS) -> dict[str, Any]:
    accounts = [
        ("1200", "Accounts receivable", "asset"), ("1300", "Inventory", "asset"),
        ("1320", "Inventory - WH2", "asset"), ("1330", "Inventory - WH3", "asset"),
        ("1350", "Goods shipped not invoiced", "asset"), ("2000", "Accounts payable", "liability"),
        ("2100", "Goods received not invoiced", "liability"), ("3000", "Opening balance", "equity"),
        ("4000", "Sales", "income"), ("5000", "Cost of goods sold", "expense"),
        ("5100", "Purchase price variance", "expense"), ("5200", "Inventory adjustments", "expense"),
        ("5210", "Damage", "expense"), ("1400", "Work in progress", "asset"),
        ("2200", "Landed cost clearing", "liability"), ("5300", "Revaluation", "expense"),
        ("5400", "Applied overhead", "expense"),
    ]
    return {
        "entities": [{"code": "ACME", "currency": "USD"}],
        "accounts": [{"code": c, "name": n, "type": t} for c, n, t in accounts],
        "roles": {"inventory": "1300", "grni": "2100", "ap": "2000", "ar": "1200",
                  "revenue": "4000", "cogs": "5000", "gsni": "1350", "ppv": "5100",
                  "inventory_adjustment": "5200", "opening_balance": "3000", "wip": "1400",
                  "applied_overhead": "5400", "landed_cost_clearing": "2200",
                  "revaluation": "5300"},
        "mapping": [{"role": "inventory", "location": "WH2", "account": "1320"},
                    {"role": "inventory", "location": "WH3", "account": "1330"},
                    {"role": "inventory_adjustment", "reason": "damage", "account": "5210"}],
        "categories": [{"code": "FIFO", "valuation": "fifo", "cogs_on": "shipment"},
                       {"code": "AVG", "valuation": "average", "cogs_on": "invoice"}],
        "uoms": [{"code": "EA"}, {"code": "CS6", "base": "EA", "factor": "6"}],
        "products": [{"sku": f"SKU-{n:05d}", "category": "FIFO" if n % 2 else "AVG", "uom": "EA"}
                     for n in range(skus)]
        + [{"sku": f"KIT-{k:02d}", "category": "FIFO", "uom": "EA", "kind": "kit",
            "components": [{"sku": f"SKU-{n:05d}", "qty": q} for n, q in _kit(k, skus)]}
           for k in range(KITS)]
        + [{"sku": f"FG-{k:02d}", "category": "FIFO", "uom": "EA"} for k in range(FINISHED)],
        "locations": [{"code": code, "entity": "ACME"} for code in LOCATIONS],
        "policies": {"negative_stock": "reject"},
    }


MIXES = ("full", "core")


def generate_stream(count: int, seed: int = 1, skus: int = SKUS,
                    start: dt.date = dt.date(2024, 1, 1), days: int = 1095,
                    mix: str = "full") -> Iterator[bytes]:
    """Exactly `count` JSON lines in date order, about 3 lines per event, ~0.1% bad.
    `mix="core"` leaves out kits, production orders and landed costs."""
    produced = [0]
    for line in _stream(random.Random(seed), skus, start, days, count, produced,
                        complex_ops=mix == "full"):
        if produced[0] >= count:
            return
        produced[0] += 1
        yield line


def _stream(rng: random.Random, skus: int, start: dt.date, days: int, count: int,
            produced: list[int], complex_ops: bool = True) -> Iterator[bytes]:
    on_hand: dict[tuple[int, int], int] = {}
    cost = [rng.randint(200, 5000) for _ in range(skus)]  # cents
    unbilled: list[tuple[str, list[tuple[int, int]]]] = []
    uninvoiced: list[tuple[str, list[tuple[int, int]]]] = []
    recent_receipts: list[str] = []
    orders: dict[str, int] = {}  # open production order -> its location
    order_count = 0
    dumps = orjson.dumps
    n = -1
    while True:
        n += 1
        date = (start + dt.timedelta(days=produced[0] * days // max(count, 1))).isoformat()
        roll = rng.random()
        event_id = f"e{n}"
        if n % 997 == 500:
            yield from _bad_event(rng, n, date)
            continue
        if roll < 0.27 or not on_hand:
            # replenishment: SKUs below their reorder point get a receipt up to ~60 units
            loc = rng.randrange(len(LOCATIONS))
            lines = []
            wanted = rng.randint(2, 4)
            candidates = sorted(rng.sample(range(skus), 40),
                                key=lambda k: on_hand.get((k, loc), 0))[:wanted]
            for sku in candidates:
                have = on_hand.get((sku, loc), 0)
                qty = max(5, min(60, 45 - have + rng.randint(-5, 5)))
                unit = cost[sku] + rng.randint(-20, 20)
                on_hand[(sku, loc)] = have + qty
                lines.append((sku, qty, unit))
            if not lines:
                continue
            unbilled.append((event_id, [(s, q) for s, q, _ in lines]))
            recent_receipts = (recent_receipts + [event_id])[-50:]
            yield dumps({"id": event_id, "type": "receipt", "date": date,
                         "location": LOCATIONS[loc], "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q),
                                    "unit_cost": f"{u / 100:.2f}"} for s, q, u in lines]})
        elif roll < 0.47 and unbilled:
            receipt_id, lines = unbilled.pop(rng.randrange(max(1, len(unbilled) // 4)))
            yield dumps({"id": event_id, "type": "vendor_bill", "date": date, "ref": receipt_id,
                         "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q),
                                    "unit_cost": f"{(cost[s] + rng.randint(-30, 30)) / 100:.2f}"}
                                   for s, q in lines]})
        elif roll < 0.77:
            loc = rng.randrange(len(LOCATIONS))
            stocked = [k for k in _sample_keys(rng, on_hand, loc, 8)]
            lines = []
            for sku in stocked[: rng.randint(2, 4)]:
                qty = min(on_hand[(sku, loc)], rng.randint(1, 20))
                if qty <= 0:
                    continue
                on_hand[(sku, loc)] -= qty
                lines.append((sku, qty))
            if not lines:
                continue
            uninvoiced.append((event_id, lines))
            yield dumps({"id": event_id, "type": "shipment", "date": date,
                         "location": LOCATIONS[loc], "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q)} for s, q in lines]})
        elif roll < 0.90 and uninvoiced:
            shipment_id, lines = uninvoiced.pop(rng.randrange(max(1, len(uninvoiced) // 4)))
            yield dumps({"id": event_id, "type": "customer_invoice", "date": date,
                         "ref": shipment_id, "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q),
                                    "unit_price": f"{cost[s] * 1.6 / 100:.2f}"}
                                   for s, q in lines]})
        elif roll < 0.94:
            source = rng.randrange(len(LOCATIONS))
            target = (source + rng.randint(1, len(LOCATIONS) - 1)) % len(LOCATIONS)
            lines = []
            for sku in _sample_keys(rng, on_hand, source, 4)[: rng.randint(1, 4)]:
                qty = min(on_hand[(sku, source)], rng.randint(1, 10))
                if qty <= 0:
                    continue
                on_hand[(sku, source)] -= qty
                on_hand[(sku, target)] = on_hand.get((sku, target), 0) + qty
                lines.append((sku, qty))
            if not lines:
                continue
            yield dumps({"id": event_id, "type": "transfer", "date": date,
                         "from": LOCATIONS[source], "to": LOCATIONS[target], "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q)} for s, q in lines]})
        elif roll < 0.96 and not complex_ops:
            continue
        elif roll < 0.948:  # assembly of a kit whose components are on hand
            loc = rng.randrange(len(LOCATIONS))
            kit = rng.randrange(KITS)
            parts = _kit(kit, skus)
            qty = rng.randint(1, 3)
            if any(on_hand.get((part, loc), 0) < q * qty for part, q in parts):
                continue
            for part, q in parts:
                on_hand[(part, loc)] -= q * qty
            yield dumps({"id": event_id, "type": "assembly", "date": date, "seq": produced[0],
                         "location": LOCATIONS[loc], "sku": f"KIT-{kit:02d}", "qty": str(qty),
                         **({"extra_cost": "1.50"} if kit % 3 == 0 else {})})
        elif roll < 0.955:  # production: issue materials, charge labour, complete
            step = rng.random()
            if step < 0.45 or not orders:
                loc = rng.randrange(len(LOCATIONS))
                keys = [k for k in _sample_keys(rng, on_hand, loc, 3) if k % 2]
                if not keys:
                    continue
                if orders and rng.random() < 0.5:
                    order = rng.choice(sorted(orders))
                    loc = orders[order]
                    keys = [k for k in keys if on_hand.get((k, loc), 0) > 0]
                    if not keys:
                        continue
                else:
                    order_count += 1
                    order = f"MO-{order_count}"
                lines = []
                for sku in keys:
                    qty = min(on_hand[(sku, loc)], rng.randint(1, 4))
                    on_hand[(sku, loc)] -= qty
                    lines.append((sku, qty))
                orders[order] = loc
                yield dumps({"id": event_id, "type": "production_issue", "date": date,
                             "seq": produced[0], "location": LOCATIONS[loc], "order": order,
                             "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q)} for s, q in lines]})
            elif step < 0.65:
                order = rng.choice(sorted(orders))
                yield dumps({"id": event_id, "type": "production_cost", "date": date,
                             "seq": produced[0], "location": LOCATIONS[orders[order]],
                             "order": order, "amount": f"{rng.randint(500, 5000) / 100:.2f}"})
            else:
                order = rng.choice(sorted(orders))
                loc = orders.pop(order)
                yield dumps({"id": event_id, "type": "production_complete", "date": date,
                             "seq": produced[0], "location": LOCATIONS[loc], "order": order,
                             "sku": f"FG-{rng.randrange(FINISHED):02d}",
                             "qty": str(rng.randint(1, 5))})
        elif roll < 0.96:  # landed cost (freight, duty) over one or two recent receipts
            if len(recent_receipts) < 2:
                continue
            refs = rng.sample(recent_receipts, rng.randint(1, 2))
            yield dumps({"id": event_id, "type": "landed_cost", "date": date,
                         "seq": produced[0], "refs": refs,
                         "amount": f"{rng.randint(1000, 20000) / 100:.2f}",
                         "allocate": rng.choice(("value", "qty"))})
        elif roll < 0.99:
            loc = rng.randrange(len(LOCATIONS))
            keys = _sample_keys(rng, on_hand, loc, 3)
            if not keys:
                continue
            lines = []
            for sku in keys:
                delta = -min(on_hand[(sku, loc)], rng.randint(1, 3)) if rng.random() < 0.7 \
                    else rng.randint(1, 3)
                if delta == 0:
                    continue
                on_hand[(sku, loc)] += delta
                lines.append((sku, delta))
            if not lines:
                continue
            yield dumps({"id": event_id, "type": "adjustment", "date": date,
                         "location": LOCATIONS[loc], "seq": produced[0],
                         "reason": rng.choice(("damage", "shrinkage", "found")),
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q)} for s, q in lines]})
        else:
            loc = rng.randrange(len(LOCATIONS))
            keys = _sample_keys(rng, on_hand, loc, rng.randint(2, 4))
            if not keys:
                continue
            lines = []
            for sku in keys:
                counted = max(0, on_hand[(sku, loc)] + rng.choice((0, 0, 0, -1, 1)))
                on_hand[(sku, loc)] = counted
                lines.append((sku, counted))
            yield dumps({"id": event_id, "type": "cycle_count", "date": date,
                         "location": LOCATIONS[loc], "seq": produced[0],
                         "lines": [{"sku": f"SKU-{s:05d}", "qty": str(q)} for s, q in lines]})
        if len(unbilled) > 400:
            unbilled.pop(0)
        if len(uninvoiced) > 400:
            uninvoiced.pop(0)


def _sample_keys(rng: random.Random, on_hand: dict[tuple[int, int], int], loc: int,
                 tries: int) -> list[int]:
    keys: list[int] = []
    for _ in range(tries * 6):
        sku = rng.randrange(SKUS)
        if on_hand.get((sku, loc), 0) > 0 and sku not in keys:
            keys.append(sku)
            if len(keys) >= tries:
                break
    return keys


def _bad_event(rng: random.Random, n: int, date: str) -> Iterator[bytes]:
    kind = n // 997 % 4
    if kind == 0:
        yield orjson.dumps({"id": f"e{n}", "type": "shipment", "date": date, "location": "WH1",
                            "sku": "NO-SUCH-SKU", "qty": "1"})
    elif kind == 1:
        yield b'{"id": "e%d", "type": "receipt", "date": ' % n
    elif kind == 2:
        yield orjson.dumps({"id": f"e{n}", "type": "shipment", "date": date, "location": "WH1",
                            "sku": "SKU-00001", "qty": "1000000"})
    else:
        yield orjson.dumps({"id": f"e{n}", "type": "customer_invoice", "date": date,
                            "ref": "never-sent", "sku": "SKU-00001", "qty": "1",
                            "unit_price": "9.99"})


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def fresh_workspace(db: str | None, keep: bool, name: str) -> Iterator[Workspace]:
    """A new workspace: a temporary SQLite file, `--db` (must be new), or a
    temporary database on the PostgreSQL server of `--db`."""
    from stockledger.service.scenario import temporary_database

    if db is None:
        with tempfile.TemporaryDirectory(prefix="stockledger-bench-") as folder:
            with Workspace(os.path.join(folder, f"{name}.db")) as ws:
                yield ws
        return
    url = resolve_url(db)
    if is_sqlite(url) or keep:
        with Workspace(url) as ws:
            yield ws
        return
    with temporary_database(url, prefix=f"stockledger_{name}") as temp_url:
        with Workspace(temp_url) as ws:
            yield ws


SEGMENT = 100_000
RAW_EVENTS = 100_000


def raw_sqlite_reference(events: int = RAW_EVENTS) -> int:
    """This machine's yardstick: events/s of a bare sqlite3 insert of the 11 rows
    one event needs (an event, an entry, six lines, three movements) in WAL mode,
    1,000 events a transaction, no application work at all. Figures of `bench
    post` from different machines compare through it."""
    import sqlite3

    folder = tempfile.mkdtemp(prefix="stockledger-raw-")
    path = os.path.join(folder, "raw.db")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for table, columns in (("ev", 6), ("en", 5), ("li", 9), ("mv", 12)):
            names = ", ".join(f"c{i} INTEGER" for i in range(columns))
            conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {names})")
        started = time.perf_counter()
        for first in range(0, events, 1000):
            ids = range(first, first + 1000)
            with conn:
                conn.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?,?)",
                                 [(i, i, 1, 2, 3, 4, 5) for i in ids])
                conn.executemany("INSERT INTO en VALUES (?,?,?,?,?,?)",
                                 [(i, i, 1, 2, 3, 4) for i in ids])
                conn.executemany("INSERT INTO li VALUES (NULL,?,?,?,?,?,?,?,?,?)",
                                 [(i, k, 1, 2, 3, 4, 5, 6, 7) for i in ids for k in range(6)])
                conn.executemany("INSERT INTO mv VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?)",
                                 [(i, k, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
                                  for i in ids for k in range(3)])
        return round(events / (time.perf_counter() - started))
    finally:
        conn.close()
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)


def bench_post(events: int, db: str | None = None, *, seed: int = 1, keep: bool = False,
               progress: bool = False, mix: str = "full") -> dict[str, Any]:
    """Post a generated stream; besides the overall rate, the rate of every
    100,000-event stretch (batches end where they end, so stretches are about
    that long, the last one what is left) shows whether posting slows as
    history grows."""
    folder = tempfile.mkdtemp(prefix="stockledger-stream-")
    path = os.path.join(folder, "events.jsonl")
    with open(path, "wb") as handle:
        for line in generate_stream(events, seed, mix=mix):
            handle.write(line + b"\n")
    try:
        with fresh_workspace(db, keep, "bench") as ws:
            init_workspace(ws, check_setup(bench_setup()))
            done = [0]
            started = time.perf_counter()
            # (events done, wall time, posting thread CPU) at each segment boundary
            marks = [(0, started, time.thread_time())]

            def tick(n: int) -> None:
                done[0] += n
                if done[0] - marks[-1][0] >= SEGMENT:
                    marks.append((done[0], time.perf_counter(), time.thread_time()))
                if progress:
                    rate = done[0] / (time.perf_counter() - started)
                    sys.stderr.write(f"\r  {done[0]:>10,} events  {rate:,.0f}/s ")
                    sys.stderr.flush()

            waited = [0.0]

            def on_wait(seconds: float) -> None:
                waited[0] += seconds

            thread_before = marks[0][2]
            summary = post_events(ws, parse_file(path, setup=ws.current_setup(),
                                                 on_wait=on_wait), progress=tick)
            seconds = time.perf_counter() - started
            if done[0] > marks[-1][0]:  # the last stretch, shorter than a segment
                marks.append((done[0], started + seconds, time.thread_time()))
            # where the time went: the CPU of the posting thread and of the parser
            # process, and how long the posting thread waited for the parser
            cpu = {"posting_thread": round(time.thread_time() - thread_before, 2),
                   "parser_process": round(_cpu_seconds(resource.RUSAGE_CHILDREN), 2),
                   "posting_waited_for_parser": round(waited[0], 2)}
            if ws.checkpointer is not None:  # copying the log into the database file
                cpu["checkpoint_thread"] = round(ws.checkpointer.cpu_seconds, 2)
                cpu["posting_waited_for_checkpoint"] = round(ws.checkpointer.waited_seconds, 2)
            if progress:
                sys.stderr.write("\n")
            from stockledger.service.reports import reconcile

            status = reconcile(ws)["status"]
    finally:
        os.remove(path)
        os.rmdir(folder)
    stretches = [(b[0] - a[0], b[1] - a[1], b[2] - a[2]) for a, b in zip(marks, marks[1:])
                 if b[1] > a[1]]
    segments = [round(n / wall) for n, wall, _ in stretches]
    # the posting thread's CPU per event, stretch by stretch: unlike the rate, it
    # leaves out waiting (for the parser, for the machine)
    segment_cpu = [round(cpu / n * 1e6, 1) for n, _, cpu in stretches]
    return {"events": events, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds) if seconds else None,
            "peak_rss_mb": peak_rss_mb(), "mix": mix,
            "per_100k_events_per_s": segments,
            "per_100k_posting_cpu_us_per_event": segment_cpu, "posted": summary.posted,
            "exceptions": summary.exceptions, "duplicates": summary.duplicates,
            "reconcile": status, "backend": "sqlite" if ws.sqlite else "postgresql",
            "cpu_seconds": cpu, "raw_sqlite_events_per_s": raw_sqlite_reference_fresh()}


def raw_sqlite_reference_fresh() -> int:
    """The yardstick measured in a new interpreter: in the benchmark's own process,
    after a million events, the garbage collector walks a large heap during the
    loop and the figure comes out lower than the machine is."""
    import subprocess

    code = "from stockledger.service.bench import raw_sqlite_reference as r; print(r())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip())


def _history(n: int, sku: str = "SKU-00001", loc: str = "WH1") -> Iterator[bytes]:
    """n movements on one SKU at one location: receipts at varying costs and shipments."""
    rng = random.Random(7)
    start = dt.date(2025, 1, 1)
    for i in range(n):
        date = (start + dt.timedelta(days=i * 365 // max(n, 1))).isoformat()
        if i % 2 == 0:
            yield orjson.dumps({"id": f"h{i}", "type": "receipt", "date": date, "location": loc,
                                "sku": sku, "qty": "10",
                                "unit_cost": f"{rng.randint(500, 1500) / 100:.2f}"})
        else:
            yield orjson.dumps({"id": f"h{i}", "type": "shipment", "date": date,
                                "location": loc, "sku": sku, "qty": "10"})


def _time_single_events(ws: Workspace, lines: list[bytes]) -> float:
    """Milliseconds per event, each posted in its own transaction (like an API call)."""
    started = time.perf_counter()
    for line in lines:
        summary = post_events(ws, parse_lines([line]))
        if summary.posted != 1:
            raise RuntimeError(f"benchmark event did not post: {summary.results or summary.by_code}")
    return round((time.perf_counter() - started) * 1000 / len(lines), 3)


def bench_backdate(history: int, db: str | None = None, *, progress: bool = False) -> dict[str, Any]:
    with fresh_workspace(db, False, "backdate") as ws:
        init_workspace(ws, check_setup(bench_setup(skus=4)))
        post_events(ws, parse_lines(_history(history)))
        post_events(ws, parse_lines([orjson.dumps({
            "id": "x-old", "type": "receipt", "date": "2024-06-01", "location": "WH2",
            "sku": "SKU-00002", "qty": "5", "unit_cost": "1.00"})]))
        last = (dt.date(2025, 1, 1) + dt.timedelta(days=366)).isoformat()
        ordinary = [orjson.dumps({"id": f"o{i}", "type": "receipt" if i % 2 == 0 else "shipment",
                                  "date": last, "location": "WH1", "sku": "SKU-00001",
                                  "qty": "1", **({"unit_cost": "9.00"} if i % 2 == 0 else {})})
                    for i in range(200)]
        ordinary_ms = _time_single_events(ws, ordinary)
        no_later = [orjson.dumps({"id": f"n{i}", "type": "receipt", "date": "2024-07-01",
                                  "location": "WH2", "sku": "SKU-00002", "qty": "1",
                                  "unit_cost": "2.00"}) for i in range(200)]
        no_later_ms = _time_single_events(ws, no_later)
        started = time.perf_counter()
        summary = post_events(ws, parse_lines([orjson.dumps({
            "id": "backdated", "type": "receipt", "date": "2024-12-01", "location": "WH1",
            "sku": "SKU-00001", "qty": "10", "unit_cost": "1.00"})]))
        seconds = time.perf_counter() - started
        from stockledger.service.reports import reconcile

        status = reconcile(ws)["status"]
    return {"history": history, "seconds": round(seconds, 3), "recost_entries": summary.recosts,
            "posted": summary.posted, "ordinary_event_ms": ordinary_ms,
            "backdated_no_later_movements_ms": no_later_ms, "reconcile": status,
            "peak_rss_mb": peak_rss_mb(), "backend": "sqlite" if ws.sqlite else "postgresql"}
