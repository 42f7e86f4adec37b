"""Post `WARM` generated events, then `N` more, in this process, for a profiler.

The events are parsed (and prepared) before posting starts, as the parser
process would, so the timed phase is the posting thread's work alone. With
`CG=1` set and the script run under ``valgrind --tool=callgrind
--instr-atstart=no``, instrumentation is switched on for the second phase only:
see `tools/post_instructions.sh`.

    python tools/post_phase.py N        # WARM defaults to 8000
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile

from stockledger.adapters.formats.requests import parse_chunk, parsed_from_tuple
from stockledger.domain.errors import Rejection
from stockledger.domain.resolve import prepare
from stockledger.service.bench import bench_setup, generate_stream
from stockledger.service.ingest import Prepared, post_events
from stockledger.service.workspace import Workspace, check_setup, init_workspace


def main() -> None:
    count = int(sys.argv[1])
    warm = int(os.environ.get("WARM", "8000"))
    lines = list(generate_stream(warm + count, 1))
    with tempfile.TemporaryDirectory(prefix="stockledger-phase-") as folder:
        with Workspace(os.path.join(folder, "phase.db")) as ws:
            init_workspace(ws, check_setup(bench_setup()))
            setup = ws.current_setup()

            def prepare_one(request: object) -> tuple:
                try:
                    return tuple(prepare(request, setup))  # type: ignore[arg-type]
                except Rejection as rejection:
                    return ("!", setup.version, rejection.code.value, rejection.message)

            items = [parsed_from_tuple(t, Prepared._make)
                     for t in parse_chunk(1, "", lines, prepare_one)]
            post_events(ws, items[:warm])
            measured = items[warm:]
            del items, lines
            # a full collection of the warm-up's objects must not land in the
            # count by chance (it did: 21,000 instructions an event on 2026-12-06)
            gc.collect()
            gc.freeze()
            callgrind = bool(os.environ.get("CG"))
            if callgrind:
                _instrument("on")
            summary = post_events(ws, measured)
            if callgrind:
                _instrument("off")
    print(f"posted {summary.posted} exceptions {summary.exceptions}", file=sys.stderr)


def _instrument(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())],
                   capture_output=True, check=False)


if __name__ == "__main__":
    main()
