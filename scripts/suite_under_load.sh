#!/usr/bin/env bash
# The default test suite with every core kept busy by other processes (a slow CI day): the suite must
# still pass, since no test has a wall-clock limit (speed is measured in bench/, not asserted in tests).
# Writes reports/ci/suite_under_load.log (pytest's output) and reports/ci/suite_under_load.json.
#   Usage: scripts/suite_under_load.sh [LOAD_PROCESSES]       (default: one busy process per core)
#   With 0 load processes it times the suite on an otherwise idle machine: reports/ci/suite_idle.{log,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-$(nproc)}
PY=${PYTHON:-.venv/bin/python}
OUT=reports/ci
NAME=suite_under_load; [ "$N" = 0 ] && NAME=suite_idle
mkdir -p "$OUT"
pids=()
for _ in $(seq "$N"); do "$PY" -c "while True: pass" & pids+=($!); done
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true' EXIT
start=$(date +%s)
set +e
STABLESTYLE_ASSETS=${STABLESTYLE_ASSETS:-../shared/assets} "$PY" -m pytest -q -p no:cacheprovider > "$OUT/$NAME.log" 2>&1
rc=$?
set -e
end=$(date +%s)
summary=$(tail -n 1 "$OUT/$NAME.log")
"$PY" - "$rc" "$((end - start))" "$N" "$summary" > "$OUT/$NAME.json" <<'PYEOF'
import json, os, sys
from stablestyle.report import provenance
rc, seconds, load, summary = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(json.dumps({"command": f"scripts/suite_under_load.sh {load}", "exit_status": rc, "wall_seconds": seconds,
                  "busy_processes": load, "cores": os.cpu_count(), "pytest_summary": summary,
                  "provenance": provenance(["scripts/suite_under_load.sh", str(load)])}, indent=1))
PYEOF
echo "exit $rc in $((end - start)) s with $N busy processes: $summary"
exit $rc
