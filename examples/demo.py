"""The stockledger demo: one month of a small business, posted through the real CLI.

    make demo          (or: .venv/bin/python examples/demo.py, from the repo root)

It starts from a fresh ./stockledger.db, runs the `stockledger` commands a new
user would run, printing each command before its output, and then checks that
the books make sense. It exits non-zero when a command fails, when the
reconciliation is not "balanced", or when a check fails.

What the month contains and what to look at: examples/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("stockledger")
DB_FILES = ("stockledger.db", "stockledger.db-wal", "stockledger.db-shm")

# The six events of the month that must end up in the exception queue, and why.
EXPECTED_EXCEPTIONS = {
    ("wms", "SHP-0502"): "UNKNOWN_SKU",          # KETTLE-ELEC is not set up yet
    ("wms", "SHP-POP-01"): "UNKNOWN_LOCATION",   # the POPUP store is not a location
    ("wms", "SHP-0504"): "INSUFFICIENT_STOCK",   # 40 grinders instead of 4 from EAST
    ("erp", "INV-29999"): "UNKNOWN_REFERENCE",   # invoices a shipment never sent
    ("wms", "GRN-001"): "CONFLICT",              # a resend of GRN-001 with another qty
    ("default", None): "INVALID_EVENT",          # a line cut off in transit (no id)
}
EXPECTED_DUPLICATES = 1                          # an exact resend of GRN-001
BACKDATED_RECEIPT = ("wms", "GRN-PROMO-0302")   # dated 2026-03-02, arrives 2026-03-19
INVENTORY_ACCOUNTS = ("1300", "1310", "1320", "1330")
GRNI = "2100"
COGS_ACCOUNTS = ("5000", "5010", "5020")
ADJUSTMENT_ACCOUNTS = ("5200", "5210", "5220")  # counts, damage, samples (no revaluations)
MONTH = "2026-03"
CHARTS = ("valuation", "margin", "accuracy")
CHART_DIR = HERE / "out"  # git-ignored


def shown(path: Path) -> str:
    """A path as the user would type it (relative to the current directory)."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("STOCKLEDGER_DB", None)  # the demo always uses ./stockledger.db
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "120")  # readable tables when the output is piped
    return env


class Demo:
    def __init__(self) -> None:
        self.env = child_env()
        self.problems: list[str] = []

    def run(self, *args: str, show: bool = True) -> str:
        """Run `stockledger ARGS`; print the command and its output when `show`."""
        if show:
            print(f"\n$ stockledger {' '.join(args)}", flush=True)
        done = subprocess.run([str(CLI), *args], env=self.env, capture_output=not show,
                              text=True, check=False)
        if done.returncode != 0:
            if not show:
                sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"demo failed: `stockledger {' '.join(args)}` exited with "
                             f"{done.returncode}")
        return done.stdout if not show else ""

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json", show=False))

    def check(self, ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            self.problems.append(what)


def main() -> int:
    started = time.monotonic()
    if not CLI.exists():
        sys.exit(f"{CLI} not found: run `make demo` (it installs the project into .venv first)")
    setup, events = HERE / "setup.yaml", HERE / "events.jsonl"
    for name in DB_FILES:
        Path(name).unlink(missing_ok=True)

    demo = Demo()
    print("stockledger demo: Harbor Coffee Supply, March 2026 (see examples/README.md)")
    demo.run("init", "--config", shown(setup))
    demo.run("post", shown(events))
    demo.run("report", "trial-balance")
    demo.run("report", "valuation")
    demo.run("exceptions", "list")

    # The backdated receipt re-costed the grinder shipments that had already
    # posted: show the first of them (its post entry and its recost entry).
    recosts = [e for e in demo.json("journal") if e["kind"] == "recost"
               and (e.get("caused_by") or {}).get("id") == BACKDATED_RECEIPT[1]]
    outflows = list(dict.fromkeys(e["event"]["id"] for e in recosts))
    print(f"\n# {BACKDATED_RECEIPT[1]} (dated 2026-03-02, keyed on 2026-03-19) re-costed "
          f"{len(outflows)} earlier outflow(s): {', '.join(outflows) or 'none'}")
    if outflows:
        demo.run("journal", "--event", outflows[0], "--source", recosts[0]["event"]["source"])

    demo.run("reconcile")

    # Month-end figures and charts (docs/exports.md)
    demo.run("report", "kpis", "--period", MONTH)
    for kind in CHARTS:
        demo.run("report", "chart", kind, "--period", MONTH, "--out",
                 shown(CHART_DIR / f"{kind}.png"))

    # -- checks ---------------------------------------------------------------------------
    print("\nchecks:")
    reconcile = demo.json("reconcile")
    demo.check(reconcile["status"] == "balanced",
               f"reconcile --json: status is {reconcile['status']!r}")

    queue = demo.json("exceptions", "list")
    got = {(e["source"], None if e["id"].startswith("unparsed-") else e["id"]): e["code"]
           for e in queue}
    unexpected = sorted(set(got.items()) - set(EXPECTED_EXCEPTIONS.items()), key=str)
    missing = sorted(set(EXPECTED_EXCEPTIONS.items()) - set(got.items()), key=str)
    demo.check(not unexpected and not missing,
               f"exception queue holds exactly the {len(EXPECTED_EXCEPTIONS)} bad events "
               f"({', '.join(sorted(set(EXPECTED_EXCEPTIONS.values())))})"
               + (f"; unexpected: {unexpected}, missing: {missing}"
                  if unexpected or missing else ""))

    sent = sum(1 for line in events.read_text().splitlines() if line.strip())
    sources = demo.json("report", "sources")
    posted = sum(s["events_posted"] for s in sources)
    duplicates = sum(s["duplicates"] for s in sources)
    wanted = sent - len(EXPECTED_EXCEPTIONS) - EXPECTED_DUPLICATES
    demo.check(posted == wanted and duplicates == EXPECTED_DUPLICATES,
               f"every other event posted: {posted} posted (wanted {wanted}), "
               f"{duplicates} duplicate(s)")

    tb = demo.json("report", "trial-balance")
    balance = {a["code"]: Decimal(a["balance"]) for a in tb["accounts"]}
    demo.check(tb["total_debit"] == tb["total_credit"],
               f"trial balance: debits {tb['total_debit']} = credits "
               f"{tb['total_credit']}")
    inventory = sum(balance.get(a, Decimal(0)) for a in INVENTORY_ACCOUNTS)
    valuation = Decimal(demo.json("report", "valuation")["total_value"])
    demo.check(inventory == valuation,
               f"inventory accounts {'+'.join(INVENTORY_ACCOUNTS)} = {inventory} = "
               f"valuation total {valuation}")

    kpis = demo.json("report", "kpis", "--period", MONTH)
    cogs = sum(balance.get(a, Decimal(0)) for a in COGS_ACCOUNTS)
    demo.check(Decimal(kpis["cogs"]) == cogs and kpis["turnover"] is not None,
               f"kpis: COGS {kpis['cogs']} = COGS accounts {'+'.join(COGS_ACCOUNTS)} {cogs}; "
               f"turnover {kpis['turnover']}, days of inventory {kpis['days_of_inventory']}")
    adjustments = sum(balance.get(a, Decimal(0)) for a in ADJUSTMENT_ACCOUNTS)
    net = Decimal(kpis["write_offs"]) - Decimal(kpis["adjustment_gains"])
    demo.check(net == adjustments,
               f"kpis: write-offs {kpis['write_offs']} - gains {kpis['adjustment_gains']} = "
               f"adjustment accounts {'+'.join(ADJUSTMENT_ACCOUNTS)} {adjustments}")
    written = [CHART_DIR / f"{kind}.png" for kind in CHARTS]
    demo.check(all(p.exists() and p.read_bytes()[:4] == b"\x89PNG" for p in written),
               f"charts written: {', '.join(shown(p) for p in written)}")

    unbilled, value = unbilled_receipts(events)
    demo.check(balance.get(GRNI, Decimal(0)) == -value,
               f"GRNI ({GRNI}) = {balance.get(GRNI, Decimal(0))}: exactly the receipts not "
               f"billed yet ({', '.join(unbilled)}: {value}); every billed receipt cleared")

    print(f"\ndemo finished in {time.monotonic() - started:.1f} s: "
          + ("all checks passed" if not demo.problems else f"{len(demo.problems)} check(s) FAILED"))
    return 1 if demo.problems else 0


def unbilled_receipts(events: Path) -> tuple[list[str], Decimal]:
    """Receipts no vendor bill refers to, and their value (qty x unit cost)."""
    receipts: dict[str, Decimal] = {}
    billed: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for line in events.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        key = (event.get("source", "default"), event["id"])
        if key in seen:
            continue  # a resend
        seen.add(key)
        if event["type"] == "receipt" and event["location"] in ("MAIN", "EAST"):
            receipts[event["id"]] = sum(
                (Decimal(x["qty"]) * Decimal(x["unit_cost"]) for x in event["lines"]),
                Decimal(0))
        elif event["type"] == "vendor_bill":
            billed.add(event["ref"])
    names = sorted(r for r in receipts if r not in billed)
    return names, sum((receipts[r] for r in names), Decimal(0))


if __name__ == "__main__":
    sys.exit(main())
