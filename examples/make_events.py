"""Generate examples/events.jsonl: one month (March 2026) of Harbor Coffee Supply.

    .venv/bin/python examples/make_events.py        # rewrites examples/events.jsonl

The output is committed; this script is here so the month can be read as code
and regenerated. It is deterministic (fixed seed, no clock), so running it
again gives the same file byte for byte.

Two systems send events:
  wms  the warehouse: opening balances, receipts, shipments, transfers,
       adjustments, cycle counts, returns, one reversal
  erp  accounting: vendor bills and credits, customer invoices and credit
       notes; they refer to the wms documents (ref + ref_source "wms")

The script keeps its own running stock per SKU and warehouse, in the order the
events arrive, so that every good event can post under negative_stock: reject
and every cycle count states a sensible quantity. A handful of scripted
events make the month interesting (see examples/README.md); six bad events are
meant to land in the exception queue.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 20260301
OUT = Path(__file__).with_name("events.jsonl")
MONTH_START = dt.date(2026, 3, 1)
MONTH_END = dt.date(2026, 3, 31)
CENT = Decimal("0.01")

# One row per product. qty: the range of one order line; w: how often it is ordered;
# open: opening stock MAIN, EAST; main/east: reorder point and order-up-to level
# (None: not stocked at EAST); std: standard cost; case: bought in cases of 12.
_ROWS = [
    # sku, category, supplier, cost, list price, qty, w, open, main, east
    ("GRINDER-BURR", "FG", "RH", "62.00", "129.00", (1, 2), 6, (8, 3), (5, 18), (2, 4)),
    ("KETTLE-GOOSE", "FG", "RH", "28.50", "59.00", (1, 3), 8, (20, 6), (8, 24), (3, 6)),
    ("DRIPPER-CER", "FG", "RH", "7.20", "18.00", (2, 6), 9, (60, 20), (20, 60), (8, 20)),
    ("PRESS-FRENCH-1L", "FG", "RH", "14.80", "34.00", (1, 4), 7, (30, 10), (10, 30), (4, 10)),
    ("SCALE-DIGI", "FG", "RH", "11.40", "27.00", (1, 3), 6, (25, 8), (8, 25), (3, 8)),
    ("MUG-12OZ", "FG", "RH", "3.10", "9.50", (6, 24), 8, (144, 48), (72, 192), (24, 48)),
    ("BEAN-HOUSE-1KG", "CONS", "CR", "14.20", "26.00", (2, 10), 12, (80, 30), (40, 100), (15, 30)),
    ("BEAN-DECAF-1KG", "CONS", "CR", "16.10", "28.00", (1, 5), 5, (30, 10), (12, 36), (5, 10)),
    ("FILTER-P100", "CONS", "PW", "2.35", "5.90", (6, 24), 9, (240, 72), (96, 240), (36, 72)),
    ("DESCALER-500", "CONS", "PW", "4.60", "11.00", (2, 8), 5, (50, 15), (20, 50), (6, 15)),
    ("BURR-SET", "SPARE", "GP", "18.40", "39.00", (1, 2), 3, (7, 0), (4, 12), None),
    ("GASKET-KIT", "SPARE", "GP", "3.35", "9.00", (1, 4), 3, (16, 0), (10, 30), None),
]
_FIELDS = ("cat", "sup", "cost", "price", "qty", "w", "open", "main", "east")
CATALOG: dict[str, dict] = {row[0]: dict(zip(_FIELDS, row[1:])) for row in _ROWS}
CATALOG["MUG-12OZ"]["case"] = CATALOG["FILTER-P100"]["case"] = True
CATALOG["BURR-SET"]["std"], CATALOG["GASKET-KIT"]["std"] = "18.00", "3.50"
# supplier -> delivery weekdays (Mon=0); the supplier code prefixes its bill numbers
SUPPLIERS = {"RH": (1, 3),   # Ridgeline Housewares: Tue, Thu
             "CR": (0, 3),   # Cascade Roasters: Mon, Thu (coffee lots vary in price)
             "PW": (2,),     # PaperWorks: Wed
             "GP": (4,)}     # GrindParts: Fri
BEAN_LOT_COST = {"BEAN-HOUSE-1KG": ["14.45", "14.10", "14.60", "14.30"],
                 "BEAN-DECAF-1KG": ["16.35", "15.90", "16.20"]}


def money(x: Decimal | str | int) -> str:
    return str(Decimal(x).quantize(CENT, ROUND_HALF_UP))


def business_days() -> list[dt.date]:
    day, days = MONTH_START, []
    while day <= MONTH_END:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


DAYS = business_days()


def add_bdays(day: dt.date, n: int) -> dt.date | None:
    """n business days after `day`; None when that falls after the month."""
    later = [d for d in DAYS if d > day]
    return later[n - 1] if 0 < n <= len(later) else (day if n == 0 else None)


class Month:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.lines: list[str] = []               # output, in arrival order
        self.stock: dict[tuple[str, str], list[tuple[dt.date, int, int]]] = defaultdict(list)
        self.arrival = 0
        self.counts: list[tuple[str, str, dt.date, int]] = []  # for the final check
        self.counters: dict[str, int] = defaultdict(int)
        self.due_erp: dict[dt.date, list[dict]] = defaultdict(list)  # bills/invoices per day
        self.receipts: dict[str, dict] = {}      # id -> event (for bills and returns)
        self.bill_of: dict[str, str] = {}        # receipt id -> its (first) bill id
        self.shipments: dict[str, dict] = {}
        self.invoice_price: dict[tuple[str, str], str] = {}
        self.invoiced_by: dict[str, str] = {}    # shipment id -> invoice date
        self.notes: dict[str, str] = {}          # the scripted events, for the summary
        self.kettle_receipt: str | None = None   # the receipt billed at a higher price
        self.kettle_bill_price = "29.10"
        self.burr_billed = self.bean_billed = self.press_billed = False
        self.returned: tuple[str, str] | None = None   # (shipment, sku) of the return
        self.mistaken = [("SCALE-DIGI", 2), ("DRIPPER-CER", 3)]  # the order keyed twice

    # -- plumbing ---------------------------------------------------------------------
    def next_id(self, prefix: str, width: int = 4, start: int = 1) -> str:
        self.counters[prefix] += 1
        return f"{prefix}-{start - 1 + self.counters[prefix]:0{width}d}"

    def emit(self, event: dict, moves: list[tuple[str, str, dt.date, int]] = ()) -> dict:
        """Write an event and apply its stock moves (sku, location, date, delta)."""
        self.arrival += 1
        for sku, loc, day, delta in moves:
            self.stock[(sku, loc)].append((day, self.arrival, delta))
            later = {d for d, _, _ in self.stock[(sku, loc)] if d >= day}
            assert all(self.on_hand(sku, loc, d) >= 0 for d in later), (event, sku, loc)
        self.lines.append(json.dumps(event, separators=(", ", ": ")))
        return event

    def emit_raw(self, text: str) -> None:
        """A line written as is (the bad events: no stock effect)."""
        self.arrival += 1
        self.lines.append(text)

    def note(self, event_id: str, text: str) -> None:
        self.notes[event_id] = text

    def on_hand(self, sku: str, loc: str, day: dt.date) -> int:
        return sum(delta for d, _, delta in self.stock[(sku, loc)] if d <= day)

    # -- documents ---------------------------------------------------------------------
    def opening(self) -> None:
        for n, loc in enumerate(("MAIN", "EAST")):
            lines, moves = [], []
            for sku, p in CATALOG.items():
                qty = p["open"][n]
                if qty:
                    cost = p.get("std", p["cost"])   # spare parts were carried at standard
                    lines.append({"sku": sku, "qty": str(qty), "unit_cost": cost})
                    moves.append((sku, loc, MONTH_START, qty))
            self.emit({"id": f"OB-{loc}", "source": "wms", "type": "opening_balance",
                       "date": str(MONTH_START), "location": loc, "lines": lines}, moves)

    def receipt(self, day: dt.date, loc: str, items: list[tuple[str, int, str]], *,
                bill_in: int | None = None, bill_price: dict[str, str] | None = None,
                date: dt.date | None = None, sku_as_sent: dict[str, str] | None = None,
                rid: str | None = None) -> dict:
        """items: (sku, qty in EA, unit cost per EA). Case-packed SKUs go by the case."""
        rid = rid or self.next_id("GRN", 3)
        date = date or day
        lines, moves = [], []
        for sku, qty, cost in items:
            line = {"sku": (sku_as_sent or {}).get(sku, sku)}
            if CATALOG[sku].get("case"):
                assert qty % 12 == 0
                line.update(qty=str(qty // 12), uom="CS12", unit_cost=money(Decimal(cost) * 12))
            else:
                line.update(qty=str(qty), unit_cost=cost)
            lines.append(line)
            moves.append((sku, loc, date, qty))
        event = self.emit({"id": rid, "source": "wms", "type": "receipt", "date": str(date),
                           "location": loc, "lines": lines}, moves)
        self.receipts[rid] = event
        if bill_in is not None:
            bill_day = add_bdays(day, bill_in)
            if bill_day is not None:
                self.due_erp[bill_day].append(self.bill(event, bill_price or {}))
                self.bill_of[rid] = self.due_erp[bill_day][-1]["id"]
        return event

    def bill(self, receipt: dict, price: dict[str, str], lines: list[dict] | None = None,
             bid: str | None = None) -> dict:
        sup = CATALOG[self.canonical(receipt["lines"][0]["sku"])]["sup"]
        bid = bid or self.next_id(f"BILL-{sup}", 4, start=4400 if sup == "RH" else 700)
        if lines is None:
            lines = []
            for line in receipt["lines"]:
                sku = self.canonical(line["sku"])
                bl = {"sku": sku, "qty": line["qty"], "unit_cost": line["unit_cost"]}
                if "uom" in line:
                    bl["uom"] = line["uom"]
                if sku in price:
                    bl["unit_cost"] = price[sku]
                lines.append(bl)
        return {"id": bid, "source": "erp", "type": "vendor_bill", "ref": receipt["id"],
                "ref_source": "wms", "lines": lines}

    @staticmethod
    def canonical(sent: str) -> str:
        for sku in CATALOG:
            if sent.replace("-", "").lower() == sku.replace("-", "").lower():
                return sku
        return {"MUG12": "MUG-12OZ", "BG-100": "GRINDER-BURR", "DSC500": "DESCALER-500"}[sent]

    def shipment(self, day: dt.date, loc: str, items: list[tuple[str, int]], *,
                 invoice_in: int | None = 0, discount: bool = False,
                 sku_as_sent: dict[str, str] | None = None, sid: str | None = None) -> dict:
        sid = sid or self.next_id("SHP")
        lines = [{"sku": (sku_as_sent or {}).get(sku, sku), "qty": str(qty)} for sku, qty in items]
        event = self.emit({"id": sid, "source": "wms", "type": "shipment", "date": str(day),
                           "location": loc, "lines": lines},
                          [(sku, loc, day, -qty) for sku, qty in items])
        self.shipments[sid] = event
        if invoice_in is not None:
            inv_day = add_bdays(day, invoice_in)
            if inv_day is not None:
                inv_lines = []
                for sku, qty in items:
                    price = Decimal(CATALOG[sku]["price"]) * (Decimal("0.9") if discount else 1)
                    self.invoice_price[(sid, sku)] = money(price)
                    inv_lines.append({"sku": sku, "qty": str(qty), "unit_price": money(price)})
                self.invoiced_by[sid] = str(inv_day)
                self.due_erp[inv_day].append(
                    {"id": self.next_id("INV", 5, start=26001), "source": "erp",
                     "type": "customer_invoice", "ref": sid, "ref_source": "wms",
                     "lines": inv_lines})
        return event

    def erp_docs(self, day: dt.date) -> None:
        for doc in self.due_erp.pop(day, []):
            self.emit({**{k: doc[k] for k in ("id", "source", "type")}, "date": str(day),
                       **{k: v for k, v in doc.items() if k not in ("id", "source", "type")}})

    def transfer(self, day: dt.date, src: str, dst: str, items: list[tuple[str, int]]) -> None:
        moves = [(s, src, day, -q) for s, q in items] + [(s, dst, day, q) for s, q in items]
        self.emit({"id": self.next_id("TRF", 3), "source": "wms", "type": "transfer",
                   "date": str(day), "from": src, "to": dst,
                   "lines": [{"sku": s, "qty": str(q)} for s, q in items]}, moves)

    def adjustment(self, day: dt.date, loc: str, reason: str, items: list[tuple[str, int]],
                   note: str) -> None:
        aid = self.next_id("ADJ", 3)
        self.note(aid, f"{reason} adjustment: {note}")
        self.emit({"id": aid, "source": "wms", "type": "adjustment", "date": str(day),
                   "location": loc, "reason": reason,
                   "lines": [{"sku": s, "qty": str(q)} for s, q in items]},
                  [(s, loc, day, q) for s, q in items])

    def cycle_count(self, day: dt.date, loc: str, items: list[tuple[str, int]]) -> None:
        """items: (sku, variance against book). The event states the counted qty."""
        lines, moves = [], []
        for sku, variance in items:
            book = self.on_hand(sku, loc, day)
            counted = max(book + variance, 0)
            lines.append({"sku": sku, "qty": str(counted)})
            moves.append((sku, loc, day, counted - book))
            self.counts.append((sku, loc, day, counted))
        self.emit({"id": self.next_id("CNT", 3), "source": "wms", "type": "cycle_count",
                   "date": str(day), "location": loc, "lines": lines}, moves)

    # -- the daily routine -------------------------------------------------------------------
    def deliveries(self, day: dt.date) -> None:
        for sup, weekdays in SUPPLIERS.items():
            if day.weekday() not in weekdays or day == MONTH_START:
                continue
            items = []
            for sku, p in CATALOG.items():
                if p["sup"] != sup:
                    continue
                have, (reorder, target) = self.on_hand(sku, "MAIN", day), p["main"]
                if have < reorder + 4 * p["qty"][1] // 3:
                    qty = target - have
                    if p.get("case"):
                        qty = -(-qty // 12) * 12
                    cost = p["cost"]
                    if BEAN_LOT_COST.get(sku):
                        cost = BEAN_LOT_COST[sku].pop(0)
                    items.append((sku, qty, cost))
            if items:
                self.purchase(day, items)

    def purchase(self, day: dt.date, items: list[tuple[str, int, str]]) -> None:
        """A regular delivery at MAIN, billed a few days later, mostly at the receipt
        price. The first delivery of three SKUs is billed at another price."""
        skus = {sku for sku, _, _ in items}
        bill_in, price = self.rng.choice((2, 3, 3, 4, 5)), {}
        if "KETTLE-GOOSE" in skus and self.kettle_receipt is None:
            # FIFO: the kettle supplier raised its price (29.10 instead of 28.50) and
            # bills two days later, before any of the lot is sold: all of the difference
            # goes to inventory. Two of these kettles go back to the vendor the next day
            # (purchase return, then a vendor credit).
            bill_in, price["KETTLE-GOOSE"] = 2, self.kettle_bill_price
        elif ("PRESS-FRENCH-1L" in skus and not self.press_billed
              and add_bdays(day, 7) is not None):
            # FIFO: billed at 15.20 instead of 14.80 seven business days after the
            # delivery, when part of the lot is sold: the difference is split between
            # inventory (what is left of the lot) and COGS (what was sold).
            self.press_billed, bill_in, price["PRESS-FRENCH-1L"] = True, 7, "15.20"
        bill_month = add_bdays(day, bill_in) is not None
        if "BURR-SET" in skus and not self.burr_billed and bill_month:
            # standard cost: billed above the receipt price -> all of it to PPV
            self.burr_billed, price["BURR-SET"] = True, "18.90"
        if "BEAN-HOUSE-1KG" in skus and not self.bean_billed and bill_month:
            # moving average: the roaster billed less than the receipt said
            self.bean_billed, price["BEAN-HOUSE-1KG"] = True, "14.05"
        event = self.receipt(day, "MAIN", items, bill_in=bill_in, bill_price=price)
        if "KETTLE-GOOSE" in skus and self.kettle_receipt is None:
            self.kettle_receipt = event["id"]
        received = {sku: cost for sku, _, cost in items}
        for sku, billed in price.items():
            self.note(self.bill_of[event["id"]], f"bills {event['id']} with {sku} at {billed} "
                                                  f"(received at {received[sku]})")

    def replenish_east(self, day: dt.date) -> None:
        items = []
        for sku, p in CATALOG.items():
            if not p["east"]:
                continue
            reorder, target = p["east"]
            have = self.on_hand(sku, "EAST", day)
            if have <= reorder:
                qty = target - have
                if self.on_hand(sku, "MAIN", day) - qty >= p["main"][0]:
                    items.append((sku, qty))
        if items:
            self.transfer(day, "MAIN", "EAST", items)

    def orders(self, day: dt.date, loc: str, n: int) -> None:
        skus = [s for s, p in CATALOG.items() if loc == "MAIN" or p["east"]]
        weights = [CATALOG[s]["w"] for s in skus]
        for _ in range(n):
            picked: list[tuple[str, int]] = []
            n_lines = self.rng.choice((1, 1, 2, 2, 3))
            for sku in dict.fromkeys(self.rng.choices(skus, weights, k=n_lines)):
                lo, hi = CATALOG[sku]["qty"]
                qty = self.rng.randint(lo, hi)
                if CATALOG[sku].get("case") and qty >= 12:
                    qty = qty // 6 * 6
                keep = CATALOG[sku][loc.lower()][0] // 3 if loc == "MAIN" else 0
                if self.on_hand(sku, loc, day) - qty >= keep:
                    picked.append((sku, qty))
            if picked:
                late = day >= dt.date(2026, 3, 30)
                self.shipment(day, loc, picked, discount=self.rng.random() < 0.2,
                              invoice_in=self.rng.choice((0, 0, 0, 1, 1, 2)) if not late
                              else self.rng.choice((0, None)))

    # -- the month ------------------------------------------------------------------------------
    def run(self) -> None:
        self.opening()
        scripted = [  # (day, what happens besides the daily routine), in date order
            (dt.date(2026, 3, 4), self.day_partial_bill_receipt),
            (dt.date(2026, 3, 9), self.day_damage_mugs),
            (dt.date(2026, 3, 10), self.day_unknown_sku),
            (dt.date(2026, 3, 11), self.day_mistaken_shipment),
            (dt.date(2026, 3, 12), self.day_reversal_and_unknown_location),
            (dt.date(2026, 3, 13), self.day_samples),
            (dt.date(2026, 3, 13), self.day_purchase_return),
            (dt.date(2026, 3, 17), self.day_vendor_credit),
            (dt.date(2026, 3, 18), self.day_insufficient_stock),
            (dt.date(2026, 3, 19), self.day_backdated_receipt_arrives),
            (dt.date(2026, 3, 20), self.day_unknown_reference),
            (dt.date(2026, 3, 23), self.day_malformed_line),
            (dt.date(2026, 3, 25), self.day_resends),
            (dt.date(2026, 3, 26), self.day_customer_return),
            (dt.date(2026, 3, 27), self.day_credit_note),
        ]
        counts = {
            dt.date(2026, 3, 6): ("MAIN", [("DRIPPER-CER", -1), ("PRESS-FRENCH-1L", 0)]),
            dt.date(2026, 3, 13): ("EAST", [("MUG-12OZ", -2), ("FILTER-P100", 1)]),
            dt.date(2026, 3, 20): ("MAIN", [("BEAN-DECAF-1KG", -1), ("GASKET-KIT", 0)]),
            dt.date(2026, 3, 27): ("MAIN", [("DESCALER-500", 2), ("FILTER-P100", -3)]),
            dt.date(2026, 3, 31): ("EAST", [("KETTLE-GOOSE", 0), ("SCALE-DIGI", -1)]),
        }
        for day in DAYS:
            self.deliveries(day)
            if day.weekday() == 0 or day == DAYS[0]:
                self.replenish_east(day)
            self.orders(day, "MAIN", self.rng.randint(4, 6))
            self.orders(day, "EAST", self.rng.randint(1, 2))
            for when, happen in scripted:
                if when == day:
                    happen(day)
            if day in counts:
                self.cycle_count(day, *counts[day])
            self.erp_docs(day)
        assert not any(d <= MONTH_END for d in self.due_erp), self.due_erp
        self.check_counts()

    # -- scripted days -------------------------------------------------------------------------
    def day_partial_bill_receipt(self, day: dt.date) -> None:
        # A case-packed delivery keyed with a lowercase SKU and the CS12 unit. The
        # supplier bills it in two parts (6 cases now, 6 cases a week later).
        r = self.receipt(day, "MAIN", [("MUG-12OZ", 144, "3.05")], rid="GRN-MUG-0304",
                         sku_as_sent={"MUG-12OZ": "mug-12oz"})
        self.note("GRN-MUG-0304", "sent as 'mug-12oz' in CS12 cases; billed in two parts "
                                  "(BILL-RH-4390, BILL-RH-4391)")
        first = {"sku": "MUG-12OZ", "qty": "6", "uom": "CS12", "unit_cost": "36.60"}
        self.due_erp[add_bdays(day, 2)].append(self.bill(r, {}, [first], bid="BILL-RH-4390"))
        self.due_erp[add_bdays(day, 7)].append(self.bill(r, {}, [first], bid="BILL-RH-4391"))

    def day_backdated_receipt_arrives(self, day: dt.date) -> None:
        # A promotional lot of grinders (58.00 instead of 62.00) delivered on Monday
        # 2026-03-02 whose paperwork turned up today: it is keyed with its real date.
        # FIFO puts its layer before the 03-03 delivery, so the grinder shipments from
        # MAIN that took the 03-03 lot (62.00) after the opening stock ran out are
        # re-costed at 58.00.
        r = self.receipt(day, "MAIN", [("GRINDER-BURR", 10, "58.00")],
                         date=dt.date(2026, 3, 2), rid="GRN-PROMO-0302")
        self.note("GRN-PROMO-0302", "backdated receipt: dated 03-02, keyed on 03-19 -> recosts")
        self.due_erp[add_bdays(day, 2)].append(self.bill(r, {}, bid="BILL-RH-4399"))

    def day_damage_mugs(self, day: dt.date) -> None:
        self.adjustment(day, "MAIN", "damage", [("MUG-12OZ", -4)],
                        "mugs broken while restocking")

    def day_samples(self, day: dt.date) -> None:
        self.adjustment(day, "MAIN", "sample", [("MUG-12OZ", -12), ("DRIPPER-CER", -2)],
                        "trade-show samples")

    def day_mistaken_shipment(self, day: dt.date) -> None:
        # The warehouse keyed one order twice; the copy is reversed tomorrow.
        self.shipment(day, "MAIN", self.mistaken, invoice_in=1, sid="SHP-0500")
        self.shipment(day, "MAIN", self.mistaken, invoice_in=None, sid="SHP-0501")
        self.note("SHP-0501", "keyed twice by mistake (a copy of SHP-0500)")

    def day_reversal_and_unknown_location(self, day: dt.date) -> None:
        self.emit({"id": "REV-001", "source": "wms", "type": "reversal", "date": str(day),
                   "ref": "SHP-0501"},
                  [(s, "MAIN", day - dt.timedelta(days=1), q) for s, q in self.mistaken])
        self.note("REV-001", "reverses SHP-0501 (its mirror entry is dated 03-11)")
        # BAD: a pop-up store that is not set up as a location -> UNKNOWN_LOCATION
        self.note("SHP-POP-01", "BAD: location POPUP is not set up -> UNKNOWN_LOCATION")
        self.emit_raw(json.dumps({"id": "SHP-POP-01", "source": "wms", "type": "shipment",
                                  "date": str(day), "location": "POPUP",
                                  "lines": [{"sku": "MUG-12OZ", "qty": "12"}]},
                                 separators=(", ", ": ")))

    def day_unknown_sku(self, day: dt.date) -> None:
        # BAD: a new product the warehouse shipped before it was set up -> UNKNOWN_SKU
        self.note("SHP-0502", "BAD: KETTLE-ELEC is not set up yet -> UNKNOWN_SKU")
        self.emit_raw(json.dumps({"id": "SHP-0502", "source": "wms", "type": "shipment",
                                  "date": str(day), "location": "MAIN",
                                  "lines": [{"sku": "KETTLE-ELEC", "qty": "2"}]},
                                 separators=(", ", ": ")))
        # an order sent with SKU aliases (BG-100 = GRINDER-BURR, DSC500 = DESCALER-500)
        self.shipment(day, "MAIN", [("GRINDER-BURR", 1), ("DESCALER-500", 2)], invoice_in=0,
                      sku_as_sent={"GRINDER-BURR": "BG-100", "DESCALER-500": "DSC500"},
                      sid="SHP-0503")
        self.note("SHP-0503", "SKUs sent by alias: BG-100, DSC500")

    def day_customer_return(self, day: dt.date) -> None:
        # A customer sends back one item of last week's order (already invoiced);
        # the credit note follows the next day.
        sid, sku = next((s, line["sku"]) for s, e in self.shipments.items()
                        if e["location"] == "MAIN" and "2026-03-20" <= e["date"] <= "2026-03-24"
                        and self.invoiced_by.get(s, "9999") < str(day)
                        for line in e["lines"] if CATALOG[line["sku"]]["cat"] == "FG")
        self.returned = (sid, sku)
        self.note("RMA-001", f"customer return of 1 {sku} of {sid}")
        self.emit({"id": "RMA-001", "source": "wms", "type": "sales_return", "date": str(day),
                   "location": "MAIN", "ref": sid, "lines": [{"sku": sku, "qty": "1"}]},
                  [(sku, "MAIN", day, 1)])

    def day_credit_note(self, day: dt.date) -> None:
        assert self.returned is not None
        sid, sku = self.returned
        self.note("CN-001", f"credit note for RMA-001 (1 {sku} of {sid})")
        self.emit({"id": "CN-001", "source": "erp", "type": "customer_invoice", "date": str(day),
                   "ref": sid, "ref_source": "wms",
                   "lines": [{"sku": sku, "qty": "-1",
                              "unit_price": self.invoice_price[(sid, sku)]}]})
        self.adjustment(day, "MAIN", "damage", [(sku, -1)],
                        "the returned item is damaged: written off")

    def day_insufficient_stock(self, day: dt.date) -> None:
        # BAD: 40 grinders instead of 4 from EAST (a typo) -> INSUFFICIENT_STOCK
        self.note("SHP-0504", "BAD: 40 grinders from EAST instead of 4 -> INSUFFICIENT_STOCK")
        self.emit_raw(json.dumps({"id": "SHP-0504", "source": "wms", "type": "shipment",
                                  "date": str(day), "location": "EAST",
                                  "lines": [{"sku": "GRINDER-BURR", "qty": "40"}]},
                                 separators=(", ", ": ")))

    def day_unknown_reference(self, day: dt.date) -> None:
        # BAD: the ERP invoices an order whose shipment was never sent -> UNKNOWN_REFERENCE
        self.note("INV-29999", "BAD: invoices SHP-0505, which was never sent -> UNKNOWN_REFERENCE")
        self.emit_raw(json.dumps({"id": "INV-29999", "source": "erp", "type": "customer_invoice",
                                  "date": str(day), "ref": "SHP-0505", "ref_source": "wms",
                                  "lines": [{"sku": "KETTLE-GOOSE", "qty": "2",
                                             "unit_price": "59.00"}]},
                                 separators=(", ", ": ")))

    def day_malformed_line(self, day: dt.date) -> None:
        # BAD: a line cut off in transit -> INVALID_EVENT
        self.note("(line)", "BAD: a shipment line cut off in transit (03-23) -> INVALID_EVENT")
        self.emit_raw('{"id": "SHP-0506", "source": "wms", "type": "shipment", "date": '
                      '"2026-03-23", "location": "MAIN", "lines": [{"sku": "DRIPPER-CER", "qty": ')

    def day_purchase_return(self, day: dt.date) -> None:
        # Two kettles of the kettle receipt billed at a higher price go back to the vendor.
        rid = self.kettle_receipt
        assert rid is not None
        self.note("RTV-001", f"2 kettles of {rid} (billed at {self.kettle_bill_price}) go back")
        self.emit({"id": "RTV-001", "source": "wms", "type": "purchase_return", "date": str(day),
                   "location": "MAIN", "ref": rid,
                   "lines": [{"sku": "KETTLE-GOOSE", "qty": "2"}]},
                  [("KETTLE-GOOSE", "MAIN", day, -2)])

    def day_vendor_credit(self, day: dt.date) -> None:
        self.note("VC-RH-0088", "vendor credit for the 2 kettles of RTV-001")
        self.emit({"id": "VC-RH-0088", "source": "erp", "type": "vendor_bill", "date": str(day),
                   "ref": self.kettle_receipt, "ref_source": "wms",
                   "lines": [{"sku": "KETTLE-GOOSE", "qty": "-2",
                              "unit_cost": self.kettle_bill_price}]})

    def day_resends(self, day: dt.date) -> None:
        # An exact resend (a duplicate, no-op) and a resend with other content (CONFLICT).
        first = next(line for line in self.lines if '"GRN-001"' in line)
        self.emit_raw(first)
        event = json.loads(first)
        event["lines"][0]["qty"] = str(int(event["lines"][0]["qty"]) + 1)
        self.emit_raw(json.dumps(event, separators=(", ", ": ")))
        self.note("GRN-001", "resent twice on 03-25: once as is (duplicate), once with "
                             "another qty (BAD -> CONFLICT)")

    # -- checks --------------------------------------------------------------------------------
    def check_counts(self) -> None:
        """A count states the qty at its date; nothing that arrived later may change it."""
        for sku, loc, day, counted in self.counts:
            assert self.on_hand(sku, loc, day) == counted, (sku, loc, day)


def main() -> None:
    month = Month()
    month.run()
    OUT.write_text("\n".join(month.lines) + "\n")
    types: dict[str, int] = defaultdict(int)
    for line in month.lines:
        try:
            types[json.loads(line)["type"]] += 1
        except json.JSONDecodeError:
            types["(malformed)"] += 1
    print(f"wrote {OUT} ({len(month.lines)} events)")
    for kind, n in sorted(types.items()):
        print(f"  {kind:18} {n}")
    print("scripted events:")
    for event_id, text in month.notes.items():
        print(f"  {event_id:15} {text}")


if __name__ == "__main__":
    main()
