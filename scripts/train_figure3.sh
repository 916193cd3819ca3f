#!/usr/bin/env bash
# Short per-frame trainings (Johnson et al. 2016 net, quarter width, 96 px crops) for the paper's Figure 3:
# one per style image; finished runs are skipped.  Usage: scripts/train_figure3.sh STYLE_NAME ...
set -euo pipefail
cd "$(dirname "$0")/.."
export STABLESTYLE_ASSETS=${STABLESTYLE_ASSETS:-../shared/assets}
PY=${PYTHON:-.venv/bin/python}
WORK=${WORK:-runs/paper}
STEPS=${FIG3_STEPS:-40}
for s in "$@"; do
  run="$WORK/fig3/$s"
  [ -f "$run/final.pt" ] && continue
  "$PY" -m stablestyle train --style "$STABLESTYLE_ASSETS/styles/$s.jpg" --content "$STABLESTYLE_ASSETS/content" \
    --mode perframe --out "$run" --overwrite --steps "$STEPS" --width 0.25 --crop 96 --batch 2 --workers 1 \
    --device "${DEVICE:-auto}" --log-every 10 --sample-every "$STEPS" --validate-every "$STEPS" \
    --checkpoint-every "$STEPS" --quiet
done
