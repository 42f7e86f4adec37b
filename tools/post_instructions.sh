#!/usr/bin/env bash
# Instructions the posting thread executes per event (callgrind), after WARM
# events of history (default 8000). Unlike seconds, the count repeats run to run
# on a busy machine, so it shows what a change to the posting path is worth.
#   bash tools/post_instructions.sh 3000            # 3,000 events after 8,000
#   WARM=100000 bash tools/post_instructions.sh 3000
set -euo pipefail
count=${1:-3000}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
out=$(mktemp)
trap 'rm -f "$out" "$out.err"' EXIT
CG=1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$python" "$here/tools/post_phase.py" "$count" 2>"$out.err" >/dev/null
grep '^posted' "$out.err"
total=$(grep -E '^(summary|totals):' "$out" | tail -1 | awk '{print $2}')
echo "instructions per event: $((total / count)) (history ${WARM:-8000} events)"
