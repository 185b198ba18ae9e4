#!/usr/bin/env bash
# One prepared session on a CUDA machine (minutes of it): prove the trainer's CUDA path,
# then train the scale study's checkpoints in parallel on the one GPU, then spend what
# is left on the paper's own scale, until DEADLINE seconds after the start. Safe to
# rerun on the same machine: a finished model is skipped, an interrupted one resumes.
#   DATA=imagefolder:../shared/datasets/cifar10-jpeg DEADLINE=540 bash scripts/train_gpu.sh
# Every run's files land in $RUNS/<name>/; the study models are fp32 (as the CPU-trained
# shipped set), the paper-scale pair uses the paper recipe.
# PHASES picks what runs: proof, study, paper (default: all three, in that order);
# MODELS, if set, only those run names (e.g. MODELS="sc_resnet20 sc_resnet20_jitter_mid").
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-imagefolder:../shared/datasets/cifar10-jpeg}
RUNS=${RUNS:-runs/gpu}
DEADLINE=${DEADLINE:-540}
PHASES=${PHASES:-proof study paper}
THREADS=${THREADS:-2}
start=$SECONDS
mkdir -p "$RUNS"
left() { echo $((DEADLINE - (SECONDS - start))); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || exit 1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" || exit 1

# Decode the images once into the cache the parallel runs then read.
python3 -c "
import time; t = time.perf_counter()
from wsms_viz.data import load_dataset
d = load_dataset('$DATA')
print(f'data: {len(d.train.labels)} train / {len(d.val.labels)} val decoded in {time.perf_counter() - t:.1f} s')" || exit 1

train_one() {  # name model [args...]: train in the background, resuming if a state is there
  local name=$1 model=$2; shift 2
  local out="$RUNS/$name"
  if [ -n "${MODELS:-}" ] && [[ " $MODELS " != *" $name "* ]]; then return 0; fi
  if [ -f "$out/card.json" ]; then echo "$name: finished earlier"; return 0; fi
  local resume=(); [ -f "$out/resume.pt" ] && resume=(--resume)
  python3 -m wsms_viz.train --model "$model" --data "$DATA" --out "$out" --name "$name" --seed 0 \
    --threads "$THREADS" --device cuda --no-progress "${resume[@]}" "$@" >>"$RUNS/$name.log" 2>&1 &
  echo "$name: started (pid $!)"
}

wait_all() {  # wait for the background runs; at the deadline, SIGTERM them (they save resume.pt)
  while [ -n "$(jobs -rp)" ]; do
    if [ "$(left)" -le 0 ]; then
      echo "deadline: stopping $(jobs -rp | wc -l) run(s); they save resume.pt"
      kill -TERM $(jobs -rp) 2>/dev/null
      wait
      return 1
    fi
    sleep 2
  done
  wait
}

if [[ " $PHASES " == *" proof "* ]]; then
  # A short real run on CUDA through the whole trainer (data on the GPU, augmentation,
  # bf16 autocast, channels_last, evaluation, zoom curve, card), then the checkpoint
  # loaded on the CPU through the real loading code: same predictions as on the GPU.
  rm -rf "$RUNS/proof"
  python3 -m wsms_viz.train --model wsms_resnet20 --data "$DATA" --out "$RUNS/proof" --epochs 2 --subset 4096 \
    --val-subset 500 --zooms 0.5 1 2 --device cuda --no-progress >"$RUNS/proof.log" 2>&1
  rc=$?
  tail -5 "$RUNS/proof.log"
  [ $rc = 0 ] || { echo "proof: the CUDA run failed (exit $rc)"; cat "$RUNS/proof.log"; exit 1; }
  python3 - "$RUNS/proof" "$DATA" <<'EOF' || { echo "proof: the CUDA checkpoint does not reload"; exit 1; }
import sys, torch
from wsms_viz.checkpoint import load_checkpoint
from wsms_viz.data import load_dataset, to_model_input
ck = load_checkpoint(sys.argv[1])
model, card = ck.model, ck.card
d = load_dataset(sys.argv[2])
x = to_model_input(d.val.images[:256], card["normalization"]["mean"], card["normalization"]["std"], "cpu")
with torch.no_grad():
    cpu = model.eval()(x).argmax(1)
    gpu = model.cuda()(x.cuda()).argmax(1).cpu()
agree = (cpu == gpu).float().mean().item()
print(f"proof: checkpoint reloads on the CPU; CPU and GPU top-1 agree on {agree:.1%} of 256 val images")
assert agree > 0.97, agree
EOF
fi

if [[ " $PHASES " == *" study "* ]]; then
  mid=(--scale-jitter 0.7071067811865476 1.4142135623730951)
  wsms=(--set integration=1x1 channels=128 stages=3)
  train_one wsms_resnet20_jitter wsms_resnet20 --precision fp32 "${wsms[@]}" --scale-jitter 0.5 2.0
  train_one resnet20_jitter_mid resnet20 --precision fp32 "${mid[@]}"
  train_one wsms_resnet20_jitter_mid wsms_resnet20 --precision fp32 "${wsms[@]}" "${mid[@]}"
  train_one sc_resnet20 sc_resnet20 --precision fp32
  train_one sc_resnet20_jitter_mid sc_resnet20 --precision fp32 "${mid[@]}"
fi
if [[ " $PHASES " == *" paper "* ]]; then
  train_one resnet110_paper resnet110 --recipe paper --precision fp32
  train_one wsms_resnet110_paper wsms_resnet110 --recipe paper --precision fp32
fi
wait_all
for f in "$RUNS"/*.log; do echo "== $f"; tail -2 "$f"; done
for d in "$RUNS"/*/; do
  [ -f "$d/card.json" ] && echo "finished: $d" || echo "unfinished: $d ($(($(wc -l <"$d/log.tsv" 2>/dev/null || echo 1) - 1)) epochs)"
done
