#!/usr/bin/env bash
# Re-measure every report that names a bundled model, after stablestyle/bundled/ changed
# (scripts/bundle_models.py): a model name such as `scream` then means other weights, and each report below
# records the weights hash it measured (reports/README.md lists them with the same commands).
#
#   hashes      reports/bundled_weights.json                (scripts/weights_hashes.py)
#   paper       reports/paper/networks + baselines, REPORT.md (scripts/reproduce_paper.sh, Figure 3 kept)
#   small       reports/small_bundled                       (all bundled nets on Sintel)
#   quality     reports/quality/bundled                     (bench/quality.py: equivalent iterations + grids)
#   demo        reports/demo                                (stablestyle demo: the Quick start table)
#   app         reports/app                                 (bench/app_vs_demo.py)
#   scene_cuts  reports/scene_cuts                          (bench/scene_cuts.py)
#   dial        reports/dial/bundled_sintel + dial.json     (the other dial inputs are kept)
#   long_video  reports/long_video                          (bench/long_video.py: 10 minutes per input)
#   ratios      reports/ratios.json                         (scripts/report_ratios.py, from all of the above)
#
# Usage: scripts/refresh_reports.sh [STEP ...]     (default: all, in the order above; on 2 CPU cores several
#        hours, long_video and quality the longest).  QUALITY_SIZES (default 256,512), QUALITY_PHOTOS
#        (default 3) and QUALITY_ITERATIONS (optimisation length per size, default 256:500,512:200: at 512 px
#        the curve only has to pass the models' losses) size the quality step.  Each step replaces its report only when its command succeeded.
# Afterwards `pytest tests/test_readme_numbers.py` lists the README figures whose source values changed:
# update the README (and docs/) from the new reports.
set -euo pipefail
cd "$(dirname "$0")/.."
export STABLESTYLE_ASSETS=${STABLESTYLE_ASSETS:-../shared/assets}
A=$STABLESTYLE_ASSETS
[ -d "$A/clips/sintel_ambush_4" ] || { echo "no assets at $A: set STABLESTYLE_ASSETS" >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
SS=("$PY" -m stablestyle)
WORK=${WORK:-runs/refresh}
ALL=(hashes paper small quality demo app scene_cuts dial long_video ratios)
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=("${ALL[@]}")
for step in "${STEPS[@]}"; do
  [[ " ${ALL[*]} " == *" $step "* ]] || { echo "unknown step '$step'; steps: ${ALL[*]}" >&2; exit 2; }
done
mkdir -p "$WORK"
SINTEL="$A/clips/sintel_ambush_4"
STYLES=$("${SS[@]}" models --styles)

replace() {  # replace SCRATCH DEST: move a finished scratch report folder over the committed one
  rm -rf "$2"; mkdir -p "$(dirname "$2")"; mv "$1" "$2"
}

for step in "${STEPS[@]}"; do
  echo "== $step ($(date -u +%H:%M:%S))"
  scratch="$WORK/$step"; rm -rf "$scratch"
  case $step in
    hashes) "$PY" scripts/weights_hashes.py ;;
    paper)
      old="$WORK/paper-old"; rm -rf "$old"; mkdir -p "$old"
      for part in networks baselines; do  # kept aside until the rerun has written its own
        if [ -d "reports/paper/$part" ]; then mv "reports/paper/$part" "$old/"; fi
      done
      if ! PARTS="networks baselines" WORK="$WORK/paper-work" scripts/reproduce_paper.sh; then
        for part in networks baselines; do
          rm -rf "reports/paper/$part"
          if [ -d "$old/$part" ]; then mv "$old/$part" reports/paper/; fi
        done
        echo "paper: reproduce_paper.sh failed; the committed tables are back in place" >&2; exit 1
      fi ;;
    small)
      models=(); styles=()
      for s in $STYLES; do
        styles+=(--style "$A/styles/$s.jpg")
        models+=(--model "stable=$s" --model "perframe=$s-perframe" --model "small=$s-small")
      done
      "${SS[@]}" evaluate "$SINTEL" "${styles[@]}" "${models[@]}" --max-size 320 --max-frames 16 --no-videos \
        --quiet --overwrite -o "$scratch"
      replace "$scratch" reports/small_bundled ;;
    quality)
      models=(); for s in $STYLES; do models+=(--model "$s" --model "$s-perframe"); done
      "$PY" bench/quality.py "${models[@]}" --photos "${QUALITY_PHOTOS:-3}" --sizes "${QUALITY_SIZES:-256,512}" \
        --iterations "${QUALITY_ITERATIONS:-256:500,512:200}" --threads "$(nproc)" -o "$scratch"
      replace "$scratch" reports/quality/bundled ;;
    demo)
      "${SS[@]}" demo -o "$scratch" --overwrite
      replace "$scratch" reports/demo ;;
    app)
      OMP_NUM_THREADS=1 "$PY" bench/app_vs_demo.py -o "$scratch"
      replace "$scratch" reports/app ;;
    scene_cuts)
      "$PY" bench/scene_cuts.py --model scream -o "$scratch"
      replace "$scratch" reports/scene_cuts ;;
    dial)
      models=(); for s in $STYLES; do models+=(--model "$s"); done
      "${SS[@]}" evaluate "$SINTEL" "${models[@]}" --stability 0 0.25 0.5 0.75 1 --max-size 320 --no-videos \
        -o "$scratch" --overwrite --quiet
      replace "$scratch" reports/dial/bundled_sintel
      inputs=(reports/dial/bundled_sintel/results.json)
      for other in wip_sintel tw200_sintel; do
        if [ -f "reports/dial/$other/results.json" ]; then inputs+=("reports/dial/$other/results.json"); fi
      done
      "$PY" bench/dial.py "${inputs[@]}" -o reports/dial/dial.json --plot reports/dial/dial.png ;;
    long_video)
      "$PY" bench/long_video.py --model scream --minutes 10 --work "$WORK/long_video_inputs" -o "$scratch"
      replace "$scratch" reports/long_video ;;
    ratios) "$PY" scripts/report_ratios.py ;;
  esac
done
echo "refreshed: ${STEPS[*]}; now: $PY -m pytest tests/test_readme_numbers.py -q"
