#!/usr/bin/env bash
# Continue the packaged (default) generator on one GPU: runs side by side, MINUTES each, from the
# same start. Run from the checkout's root on the GPU machine, with the folder that
# tools/gpu_continue/pack.py wrote carried along (default .gpu); results land in $OUT.
#
#   bash tools/gpu_continue/run.sh [MINUTES] [WORKERS_PER_RUN] [PACK]
#
# Environment:
#   VARIANTS  the runs, "name:train arguments" separated by ';' (default: the two that made stage 4,
#             "control:;id10:--set loss.lambda_id=10"). Real photos packed with pack.py --real are
#             PACK/real, e.g. "realgan:--real-glasses .gpu/real --set loss.lambda_gan_real=1".
#             Each run brings back 3 files (generator, discriminators, log; 4 with EMA) and 8 may come back:
#             at most 2 runs with discriminators; DISCS=0 leaves them out (then 2 files a run),
#             DISCS="name,name" keeps those runs' discriminators only.
#   RESUME=1  continue the runs in $RUNS where they stopped (same VARIANTS), e.g. on a machine
#             still warm after the first call; the landmark cache is re-keyed again first.
#   INIT=0    start every run from scratch (fresh weights) instead of the packaged generator
#   EMA=D     keep a moving average of each generator (train.ema=D, e.g. 0.999): NAME.safetensors is
#             then the average and NAME_raw.safetensors the generator as trained (one more file a run)
#   EXTRA     more `byeglasses train` arguments for every run, e.g. for a CPU dry run
#             EXTRA="--batch-size 2 --set train.log_every=1" bash tools/gpu_continue/run.sh 0.2 0 /tmp/pack
#
# Stage 4's ingredients (MODEL_CARD.md): MINUTES=7 on an H200, 16 cores, then RESUME=1 with 3.4.
set -uo pipefail
M=${1:-7}; W=${2:-7}; PACK=${3:-.gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_continue}; R=${RUNS:-/tmp/gpu_continue}; mkdir -p "$OUT" "$R"
VARIANTS=${VARIANTS:-"control:;id10:--set loss.lambda_id=10"}
python3 tools/gpu_continue/remote.py prep "$PACK" 2>&1 | tail -1
common=(--preset cpu --set model.resolution=256 --faces "$PACK/faces" --landmark-cache "$PACK/landmarks.npz"
        --batch-size 32 --max-minutes "$M" --steps 1000000
        --set train.num_workers="$W" --set optim.lr_g=1e-4 --set optim.lr_d=1e-4 --set loss.id_every=1
        --set train.no_glasses=0.2 --set train.checkpoint_every=500 --set train.log_every=50 ${EXTRA:-})
[ "${INIT:-1}" = 0 ] || common+=(--init "$PACK/init.safetensors")
[ -n "${EMA:-}" ] && common+=(--set train.ema="$EMA")
[ "${RESUME:-0}" = 1 ] && common+=(--resume)
names=()
IFS=';' read -ra specs <<< "$VARIANTS"
for spec in "${specs[@]}"; do
  name=${spec%%:*}; args=${spec#*:}; names+=("$name")
  # shellcheck disable=SC2086
  python3 tools/gpu_continue/remote.py train "$PACK" "${common[@]}" $args --out "$R/$name" \
      >> "$R/$name.log" 2>> "$R/$name.err" &
done
wait
for name in "${names[@]}"; do
  tail -n 1 "$R/$name.log"
  d=${DISCS:-1}
  case "$d" in 0|1) ;; *) [[ ",$d," == *",$name,"* ]] && d=1 || d=0 ;; esac
  python3 tools/gpu_continue/remote.py pack "$R/$name" "$OUT/$name" "$d" && cp "$R/$name/log.jsonl" "$OUT/${name}_log.jsonl"
done
