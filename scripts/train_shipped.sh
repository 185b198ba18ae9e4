#!/usr/bin/env bash
# Trains the four checkpoints that ship in checkpoints/, with one recipe, one seed and
# one budget, on the 45k split of ../shared/datasets/cifar10-jpeg. Safe to rerun: a
# finished model is skipped, an interrupted one resumes. Runs two models at a time
# with one thread each (2-core machine). Run state lives in $WSMS_RUNS (default
# ~/wsms-runs), outside the work tree; finished checkpoints are copied to $WSMS_DEST
# (default checkpoints/).
#   nice -n 10 bash scripts/train_shipped.sh            # all four
#   EPOCHS=2 SUBSET=2000 bash scripts/train_shipped.sh  # a quick dry run
#   WSMS_RUNS=~/wsms-runs-100 WSMS_DEST=~/wsms-runs-100/ship EPOCHS=100 PRECISION=bf16 \
#     nice -n 10 bash scripts/train_shipped.sh          # a longer budget, kept apart
# PRECISION=bf16 only on a CPU with native bf16 (AVX512-BF16, AMX): elsewhere it is ~10x slower.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${WSMS_RUNS:-$HOME/wsms-runs}
DATA=${WSMS_DATA:-imagefolder:../shared/datasets/cifar10-jpeg}
EPOCHS=${EPOCHS:-30}
THREADS=${THREADS:-1}
PRECISION=${PRECISION:-auto}
DEST=${WSMS_DEST:-checkpoints}
extra=()
[ -n "${SUBSET:-}" ] && extra+=(--subset "$SUBSET")
mkdir -p "$RUNS"

train_one() {  # name model [args...]
  local name=$1 model=$2; shift 2
  local out="$RUNS/$name"
  if [ -f "$out/card.json" ]; then echo "$name: finished"; else
    local resume=(); [ -f "$out/resume.pt" ] && resume=(--resume)
    python3 -m wsms_viz.train --model "$model" --data "$DATA" --out "$out" --name "$name" \
      --epochs "$EPOCHS" --seed 0 --threads "$THREADS" --precision "$PRECISION" --no-progress "${resume[@]}" "${extra[@]}" "$@" \
      >>"$RUNS/$name.log" 2>&1 || { echo "$name: failed or interrupted (see $RUNS/$name.log)"; return 1; }
  fi
  mkdir -p "$DEST/$name" && cp "$out/model.safetensors" "$out/card.json" "$DEST/$name/"
  echo "$name: copied to $DEST/$name"
}

# Two lanes, balanced so that neither core idles while the other lane still works
# (the multi-stage models cost about 1.3x a ResNet-20 epoch).
wsms_args=(--set integration=1x1 channels=128 stages=3)
{ train_one resnet20 resnet20 && train_one ms_resnet20 ms_resnet20 "${wsms_args[@]}"; } &
{ train_one wsms_resnet20 wsms_resnet20 "${wsms_args[@]}" && train_one resnet20_jitter resnet20 --scale-jitter 0.5 2.0; } &
wait
