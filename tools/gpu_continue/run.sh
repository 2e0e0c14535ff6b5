#!/usr/bin/env bash
# Continue the packaged (default) generator on one GPU: two runs side by side, MINUTES each, from the
# same start, "control" (the shipped model's settings) and "id10" (loss.lambda_id=10, the identity
# term's weight as a lever). Run from the checkout's root on the GPU machine, with the folder that
# tools/gpu_continue/pack.py wrote carried along (default .gpu); results land in $OUT.
#
#   bash tools/gpu_continue/run.sh [MINUTES] [WORKERS_PER_RUN] [PACK]
#
# EXTRA (environment): more `byeglasses train` arguments for both runs, e.g. for a CPU dry run
# EXTRA="--batch-size 2 --set train.log_every=1" bash tools/gpu_continue/run.sh 0.2 0 /tmp/pack
#
# This is how stage 4's candidates were trained (MODEL_CARD.md): MINUTES=7 on an H200, 16 cores,
# then both resumed for 3.4 more minutes (`... train PACK --resume` with the same arguments).
set -uo pipefail
M=${1:-7}; W=${2:-7}; PACK=${3:-.gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_continue}; R=${RUNS:-/tmp/gpu_continue}; mkdir -p "$OUT" "$R"
python3 tools/gpu_continue/remote.py prep "$PACK" 2>&1 | tail -1
common=(--preset cpu --set model.resolution=256 --faces "$PACK/faces" --landmark-cache "$PACK/landmarks.npz"
        --init "$PACK/init.safetensors" --batch-size 32 --max-minutes "$M" --steps 1000000
        --set train.num_workers="$W" --set optim.lr_g=1e-4 --set optim.lr_d=1e-4 --set loss.id_every=1
        --set train.no_glasses=0.2 --set train.checkpoint_every=500 --set train.log_every=50 ${EXTRA:-})
python3 tools/gpu_continue/remote.py train "$PACK" "${common[@]}" --out "$R/control" > "$R/control.log" 2> "$R/control.err" &
python3 tools/gpu_continue/remote.py train "$PACK" "${common[@]}" --set loss.lambda_id=10 --out "$R/id10" > "$R/id10.log" 2> "$R/id10.err" &
wait
for r in control id10; do
  tail -n 1 "$R/$r.log"
  python3 tools/gpu_continue/remote.py pack "$R/$r" "$OUT/$r" && cp "$R/$r/log.jsonl" "$OUT/${r}_log.jsonl"
done
