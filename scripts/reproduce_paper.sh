#!/usr/bin/env bash
# Reproduce the paper's results with this package: writes reports/paper/ (REPORT.md + plots + JSON).
#
#   1. Table: bundled stable vs per-frame models (every bundled style) on the Sintel clip
#      (../shared/assets/clips/sintel_ambush_4, estimated DIS flow: the clip ships without ground truth)
#      and on a generated clip with exact flow (make-clip from scikit-image photos, not used in training);
#      plus the gatys / ruder / ruder-long optimisation baselines beside the networks for the default style,
#      all on the same frames at the same (small) size.
#   2. Figure 3: short per-frame trainings for FIG3_STYLES styles, their instability on the Sintel
#      clip against the Gram-matrix trace of each style image (analyze-style --plot).
#
# Needs the bundled models (scripts/train_bundled.sh + scripts/bundle_models.py) and the shared assets.
# Usage: scripts/reproduce_paper.sh            (CPU: about an hour on 2 cores; FIG3_STEPS etc. to change)
# Steps whose output already exists are skipped (finished trainings, evaluate folders with results.json):
# delete reports/paper/ and runs/paper/ to recompute everything.  PARTS="networks baselines figure3" (the
# default) picks the parts to run; REPORT.md is rewritten from whatever reports/paper holds.
set -euo pipefail
cd "$(dirname "$0")/.."
export STABLESTYLE_ASSETS=${STABLESTYLE_ASSETS:-../shared/assets}
A=$STABLESTYLE_ASSETS
PY=${PYTHON:-.venv/bin/python}
SS=("$PY" -m stablestyle)
OUT=${OUT:-reports/paper}
WORK=${WORK:-runs/paper}
DEVICE=${DEVICE:-auto}
FIG3_STEPS=${FIG3_STEPS:-40}
PARTS=" ${PARTS:-networks baselines figure3} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
FIG3_STYLES=${FIG3_STYLES:-"15 WomenHat brushstrokes candy color flower_of_life glass la_muse mondrian mosaic picasso rain-princess scream the_resevoir_at_poitiers udnie woman_in_peasant_dress"}
mkdir -p "$OUT" "$WORK"
SINTEL="$A/clips/sintel_ambush_4"
SKDATA=$("$PY" -c "import os, skimage.data as d; print(os.path.dirname(d.__file__))")

# --- a clip with exact flow and occlusions, from photos no model was trained on
[ -d "$WORK/generated" ] || "${SS[@]}" make-clip "$SKDATA/coffee.png" "$SKDATA/astronaut.png" "$SKDATA/chelsea.png" \
  -o "$WORK/generated" --frames 16 --size 320x180 --foregrounds 2 --seed 0 --quiet

# --- table: bundled networks
models=(); styles=()
for name in $("$PY" -m stablestyle models --styles); do
  styles+=(--style "$A/styles/$name.jpg")
  models+=(--model "stable=$name")
  [ -f "stablestyle/bundled/$name-perframe.pt" ] && models+=(--model "perframe=$name-perframe")
done
part networks && { [ -f "$OUT/networks/results.json" ] || "${SS[@]}" evaluate "$SINTEL" "$WORK/generated" "${styles[@]}" "${models[@]}" --method input \
  --max-size 320 --max-frames 16 --device "$DEVICE" --no-videos --overwrite --quiet -o "$OUT/networks"; }

# --- table: optimisation baselines against the networks for the default style, like with like: the same
#     frames (6 of each clip) at the same size (128 px long side) for every method, and 200 L-BFGS iterations
#     per frame (the optimisation from noise has done most of its descent by then: bench/quality.py curves)
part baselines && { [ -f "$OUT/baselines/results.json" ] || "${SS[@]}" evaluate "$SINTEL" "$WORK/generated" --style "$A/styles/scream.jpg" \
  --method input --method gatys --method ruder --method ruder-long --model stable=scream --model perframe=scream-perframe \
  --iterations ${BASELINE_ITERATIONS:-200} --max-size 128 --max-frames 6 --device "$DEVICE" --no-videos --overwrite \
  --quiet -o "$OUT/baselines"; }

# --- Figure 3: short per-frame trainings (scripts/train_figure3.sh), instability vs Gram trace
if part figure3; then
  WORK="$WORK" FIG3_STEPS="$FIG3_STEPS" DEVICE="$DEVICE" scripts/train_figure3.sh $FIG3_STYLES
  fig_models=(); fig_styles=(); fig_images=()
  for s in $FIG3_STYLES; do
    fig_models+=(--model "perframe=$WORK/fig3/$s/final.pt"); fig_styles+=(--style "$A/styles/$s.jpg")
    fig_images+=("$A/styles/$s.jpg")
  done
  [ -f "$OUT/figure3/results.json" ] || "${SS[@]}" evaluate "$SINTEL" "${fig_styles[@]}" "${fig_models[@]}" --max-size 256 --max-frames 12 \
    --device "$DEVICE" --no-videos --overwrite --quiet -o "$OUT/figure3"
  "${SS[@]}" analyze-style "${fig_images[@]}" --instability "$OUT/figure3/results.json" --method perframe \
    --plot "$OUT/figure3_trace_vs_instability.png" --json > "$OUT/figure3_analysis.json"
fi

"$PY" scripts/paper_report.py "$OUT"
echo "wrote $OUT/REPORT.md"
