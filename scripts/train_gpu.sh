#!/usr/bin/env bash
# One prepared stretch on a CUDA machine (minutes of it): prove the trainer's CUDA path,
# then train the scale study's checkpoints and the paper-scale pair, JOBS runs at a time
# on the one GPU, until DEADLINE seconds after the start. Safe to rerun on the same
# machine: a finished model is skipped, an interrupted one resumes.
#   DATA=imagefolder:../shared/datasets/cifar10-jpeg DEADLINE=540 bash scripts/train_gpu.sh
# Every run's files land in $RUNS/<name>/, its output in $RUNS/<name>.log; the study
# models are fp32 (as the CPU-trained shipped set), the paper-scale pair uses the paper
# recipe. scripts/gpu_session.sh wraps this for runs that span device sessions.
#
# PHASES picks what runs, in this order: proof, study, paper, list (default: proof study
# paper). "list" trains the runs of the file $RUNLIST, one a line: NAME MODEL [ARGS...].
# MODELS, if set, only those run names (e.g. MODELS="sc_resnet20 sc_resnet20_jitter_mid").
# JOBS: how many runs train at once (default 2). With the captured step one process
#   keeps the GPU's queue full; a second one fills the gaps of the first's evaluation
#   and saving; more share the GPU by time-slicing (benchmarks/gpu_throughput.py
#   measures the total for 1, 2, 4 and 8 runs: set JOBS from its table).
# At DEADLINE, or on SIGTERM/SIGINT to this script, every run gets SIGTERM (it saves
# resume.pt where it is) and GRACE seconds (default 30) to do so, then SIGKILL (it keeps
# its last epoch's resume.pt). No run starts with under MIN_START seconds left (default 60).
# DEVICE (default cuda) and THREADS (default 2) go to every run; DEVICE=cpu skips the
# proof (the tests drive this script on a CPU). PAPER_PRECISION (default fp32) is the
# paper pair's --precision.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-imagefolder:../shared/datasets/cifar10-jpeg}
RUNS=${RUNS:-runs/gpu}
DEADLINE=${DEADLINE:-540}
PHASES=${PHASES:-proof study paper}
THREADS=${THREADS:-2}
JOBS=${JOBS:-2}
GRACE=${GRACE:-30}
MIN_START=${MIN_START:-60}
DEVICE=${DEVICE:-cuda}
PAPER_PRECISION=${PAPER_PRECISION:-fp32}  # the paper pair; the throughput targets were measured with bf16
start=$SECONDS
stop_requested=0
trap 'stop_requested=1' TERM INT
mkdir -p "$RUNS"
left() { echo $((DEADLINE - (SECONDS - start))); }

if [ "$DEVICE" != cpu ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || exit 1
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" || exit 1
fi

# Decode the images once into the cache the parallel runs then read.
python3 -c "
import time; t = time.perf_counter()
from wsms_viz.data import load_dataset
d = load_dataset('$DATA')
print(f'data: {len(d.train.labels)} train / {len(d.val.labels)} val decoded in {time.perf_counter() - t:.1f} s')" || exit 1

queue=()
enqueue() {  # name model [args...]: train it when a slot is free
  local name=$1
  if [ -n "${MODELS:-}" ] && [[ " $MODELS " != *" $name "* ]]; then return 0; fi
  if [ -f "$RUNS/$name/card.json" ]; then echo "$name: finished earlier"; return 0; fi
  queue+=("$(printf '%q ' "$@")")
}

start_one() {  # name model [args...]: train in the background, resuming if a state is there
  local name=$1 model=$2; shift 2
  local out="$RUNS/$name"
  local resume=(); [ -f "$out/resume.pt" ] && resume=(--resume)
  python3 -m wsms_viz.train --model "$model" --data "$DATA" --out "$out" --name "$name" --seed 0 \
    --threads "$THREADS" --device "$DEVICE" --no-progress "${resume[@]}" "$@" >>"$RUNS/$name.log" 2>&1 &
  echo "$name: started (pid $!, $(left) s left)"
}

running() { jobs -rp | wc -l; }

stop_all() {  # SIGTERM every run, GRACE seconds to save, then SIGKILL
  local pids; pids=$(jobs -rp)
  [ -z "$pids" ] && return 0
  echo "stopping $(echo "$pids" | wc -w) run(s); they save resume.pt"
  kill -TERM $pids 2>/dev/null
  local t=$SECONDS
  while [ -n "$(jobs -rp)" ] && [ $((SECONDS - t)) -lt "$GRACE" ]; do sleep 1; done
  pids=$(jobs -rp)
  if [ -n "$pids" ]; then
    echo "still running after ${GRACE} s: SIGKILL $pids (their last epoch's resume.pt stays)"
    kill -KILL $pids 2>/dev/null
  fi
  wait
}

run_queue() {  # start queued runs as slots free up; stop everything at the deadline
  local i=0
  while :; do
    while [ $i -lt ${#queue[@]} ] && [ "$(running)" -lt "$JOBS" ] && [ "$(left)" -gt "$MIN_START" ] \
          && [ $stop_requested = 0 ]; do
      eval "start_one ${queue[$i]}"
      i=$((i + 1))
    done
    if [ "$(running)" = 0 ] && { [ $i -ge ${#queue[@]} ] || [ "$(left)" -le "$MIN_START" ] || [ $stop_requested = 1 ]; }; then
      [ $i -lt ${#queue[@]} ] && echo "not started (no time left): $((${#queue[@]} - i)) run(s)"
      return 0
    fi
    if [ "$(left)" -le 0 ] || [ $stop_requested = 1 ]; then
      echo "$([ $stop_requested = 1 ] && echo "signalled" || echo "deadline"): stopping"
      stop_all
      return 1
    fi
    sleep 1
  done
}

if [[ " $PHASES " == *" proof "* ]] && [ "$DEVICE" != cpu ]; then
  # Short real runs on CUDA through the whole trainer (data on the GPU, keyed
  # augmentation, bf16 autocast, channels_last, evaluation, zoom curve, card): the
  # captured step (the default) against the eager one on the same batches, then the
  # checkpoint loaded on the CPU through the real loading code.
  for capture in graph none; do
    rm -rf "$RUNS/proof-$capture"
    python3 -m wsms_viz.train --model wsms_resnet20 --data "$DATA" --out "$RUNS/proof-$capture" --epochs 2 \
      --subset 4096 --val-subset 500 --zooms 0.5 1 2 --device cuda --capture $capture --no-progress \
      >"$RUNS/proof-$capture.log" 2>&1
    rc=$?
    tail -3 "$RUNS/proof-$capture.log"
    [ $rc = 0 ] || { echo "proof: the CUDA run (--capture $capture) failed (exit $rc)"; cat "$RUNS/proof-$capture.log"; exit 1; }
  done
  python3 - "$RUNS" "$DATA" <<'EOF' || { echo "proof: failed"; exit 1; }
import json, sys, torch
from wsms_viz.checkpoint import load_checkpoint
from wsms_viz.data import load_dataset, to_model_input
runs, source = sys.argv[1:]
logs = {c: json.load(open(f"{runs}/proof-{c}/card.json"))["log"] for c in ("graph", "none")}
for g, n in zip(logs["graph"], logs["none"]):
    print(f"proof: epoch {g['epoch']}: train loss {g['train_loss']:.4f} captured, {n['train_loss']:.4f} eager; "
          f"val acc {g['val_acc']:.3f} / {n['val_acc']:.3f}; {g['images_per_s']:.0f} / {n['images_per_s']:.0f} img/s")
    # the same batches and augmentation; only the order of float sums may differ
    assert abs(g["train_loss"] - n["train_loss"]) < 0.03 * n["train_loss"], (g, n)
ck = load_checkpoint(f"{runs}/proof-graph")
d = load_dataset(source)
x = to_model_input(d.val.images[:256], ck.card["normalization"]["mean"], ck.card["normalization"]["std"], "cpu")
with torch.no_grad():
    cpu = ck.model.eval()(x).argmax(1)
    gpu = ck.model.cuda()(x.cuda()).argmax(1).cpu()
agree = (cpu == gpu).float().mean().item()
print(f"proof: checkpoint reloads on the CPU; CPU and GPU top-1 agree on {agree:.1%} of 256 val images")
assert agree > 0.97, agree
EOF
fi

if [[ " $PHASES " == *" study "* ]]; then
  mid=(--scale-jitter 0.7071067811865476 1.4142135623730951)
  wsms=(--set integration=1x1 channels=128 stages=3)
  enqueue wsms_resnet20_jitter wsms_resnet20 --precision fp32 "${wsms[@]}" --scale-jitter 0.5 2.0
  enqueue resnet20_jitter_mid resnet20 --precision fp32 "${mid[@]}"
  enqueue wsms_resnet20_jitter_mid wsms_resnet20 --precision fp32 "${wsms[@]}" "${mid[@]}"
  enqueue sc_resnet20 sc_resnet20 --precision fp32
  enqueue sc_resnet20_jitter_mid sc_resnet20 --precision fp32 "${mid[@]}"
fi
if [[ " $PHASES " == *" paper "* ]]; then
  enqueue resnet110_paper resnet110 --recipe paper --precision "$PAPER_PRECISION"
  enqueue wsms_resnet110_paper wsms_resnet110 --recipe paper --precision "$PAPER_PRECISION"
fi
if [[ " $PHASES " == *" list "* ]]; then
  while read -r -a spec; do
    [ ${#spec[@]} -ge 2 ] && [[ ${spec[0]} != \#* ]] && enqueue "${spec[@]}"
  done <"${RUNLIST:?PHASES has list: set RUNLIST to a file of NAME MODEL [ARGS...] lines}"
fi
run_queue
for f in "$RUNS"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -2 "$f"; }; done
for d in "$RUNS"/*/; do
  [ -f "$d/card.json" ] && echo "finished: $d" || echo "unfinished: $d ($(($(wc -l <"$d/log.tsv" 2>/dev/null || echo 1) - 1)) epochs)"
done
exit 0
