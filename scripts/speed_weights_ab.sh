#!/usr/bin/env bash
# Do the speed tables still hold for the bundled weights? Times the bundled `scream` and `scream-small` (the
# nets of width 0.5 and 0.25 that the tables' end-to-end column stylizes with) against the same two models
# as bundled at git revision REV (or the two files in folder REV), on this machine, in alternating rounds, and writes the ratios:
#
#   OUT/old-margin0-N.json, new-margin0-N.json, new-default-N.json   bench/stylize_speed.py reports, round N
#   OUT/weights.json        new (margin 0) over old (margin 0): the same nets with other weights
#   OUT/edge_margin.json    new with its own edge margin over new at margin 0: what the default margin costs
#
# Usage: scripts/speed_weights_ab.sh REV OUT [ROUNDS (3)]   e.g. scripts/speed_weights_ab.sh 9bcee40^ reports/bench/weights_ab
# PRECISIONS (default fp32), BACKENDS (torch,onnx), SIZES (640x360), FRAMES (20) and E2E_FRAMES (48) pass
# through; bf16 belongs only where the CPU computes it natively. The machine should be otherwise idle; the ratios, not the rates, are the result.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,13p "$0" >&2; exit 2; }
REV=$1 OUT=$2 ROUNDS=${3:-3}
PY=${PYTHON:-.venv/bin/python}
OLD=$(mktemp -d)
trap 'rm -rf "$OLD"' EXIT
for name in scream scream-small; do  # REV: a git revision, or a folder holding the two files
  if [ -d "$REV" ]; then
    cp "$REV/$name.pt" "$OLD/$name.pt" 2> /dev/null || { echo "error: no $name.pt in folder $REV" >&2; exit 2; }
  else
    git show "$REV:stablestyle/bundled/$name.pt" > "$OLD/$name.pt" 2> /dev/null \
      || { echo "error: no stablestyle/bundled/$name.pt at revision $REV" >&2; exit 2; }
  fi
done
mkdir -p "$OUT"
common=(--device cpu --sizes "${SIZES:-640x360}" --widths 0.25,0.5 --precisions "${PRECISIONS:-fp32}"
        --backends "${BACKENDS:-torch,onnx}" --threads 2 --end-to-end --frames "${FRAMES:-20}"
        --e2e-frames "${E2E_FRAMES:-48}")
for round in $(seq 1 "$ROUNDS"); do  # alternating, so a drift of the machine's speed falls on every arm
  echo "== round $round ($(date -u +%H:%M:%S))"
  "$PY" bench/stylize_speed.py "${common[@]}" --weights "$OLD/scream.pt,$OLD/scream-small.pt" --edge-margin 0 \
    --out "$OUT/old-margin0-$round.json" > /dev/null
  "$PY" bench/stylize_speed.py "${common[@]}" --weights scream,scream-small --edge-margin 0 \
    --out "$OUT/new-margin0-$round.json" > /dev/null
  "$PY" bench/stylize_speed.py "${common[@]}" --weights scream,scream-small \
    --out "$OUT/new-default-$round.json" > /dev/null
done
arm() { local files=(); for r in $(seq 1 "$ROUNDS"); do files+=("$OUT/$2-$r.json"); done
        (IFS=,; echo "$1=${files[*]}"); }
"$PY" bench/speed_ratio.py "$(arm old old-margin0)" "$(arm new new-margin0)" -o "$OUT/weights.json" > /dev/null
"$PY" bench/speed_ratio.py "$(arm margin0 new-margin0)" "$(arm default new-default)" -o "$OUT/edge_margin.json" \
  > /dev/null
echo "wrote $OUT/weights.json and $OUT/edge_margin.json"
