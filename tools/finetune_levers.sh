#!/usr/bin/env bash
# Issue 10's training levers, each alone and all together, on the same budget, from the same start,
# then face verification on the fv-dev probes no setting was tuned on (--start 80).
#
#   bash tools/finetune_levers.sh DATA PRETRAINED OUT [MINUTES] [BATCH]
#
# DATA: the celebahq256 folder (train/, real-glasses-train/, fv-dev/); PRETRAINED: a 256 px
# checkpoint with discriminators (../shared/pretrained/cpu256-h200-6min.safetensors); OUT: a new
# folder for the runs and results; MINUTES per run (default 10); BATCH per step (default 32).
# On a GPU: 5 runs x MINUTES, then about 5 minutes of verification. Nothing of fv-dev is trained on.
set -euo pipefail
DATA=${1:?DATA}; PRE=${2:?PRETRAINED}; OUT=${3:?OUT}; MIN=${4:-10}; BATCH=${5:-32}
mkdir -p "$OUT"
common=(--preset cpu --set model.resolution=256 --faces "$DATA/train" --batch-size "$BATCH" --init "$PRE"
        --max-minutes "$MIN" --steps 1000000 --set train.no_glasses=0.2 --set loss.id_every=1
        --set optim.lr_g=1e-4 --set optim.lr_d=1e-4 --set train.checkpoint_every=200)
real=(--real-glasses "$DATA/real-glasses-train")
declare -A runs=(
  [control]=""
  [thin]="--thin-frames 0.3"
  [real-gan]="${real[*]} --set loss.lambda_gan_real=1"
  [real-id]="${real[*]} --set loss.lambda_id_real=1"
  [all]="--thin-frames 0.3 ${real[*]} --set loss.lambda_gan_real=1 --set loss.lambda_id_real=1"
)
variants=()
for name in control thin real-gan real-id all; do
  # shellcheck disable=SC2086
  byeglasses train "${common[@]}" ${runs[$name]} --out "$OUT/$name" 2> "$OUT/$name.err" | tail -1
  variants+=(--variant "$name:checkpoint=$OUT/$name/model.safetensors")
done
byeglasses eval-verification "$DATA/fv-dev" --start 80 --out "$OUT/fv_levers.json" \
  --variant "pretrained:checkpoint=$PRE" "${variants[@]}" 2> "$OUT/fv.err" | tail -1
cat "$OUT/fv_levers.md"
