#!/usr/bin/env bash
# One device session of training runs that span sessions: unpack the carried data and
# runs, train (scripts/train_gpu.sh) until BUDGET - PACK_RESERVE seconds after the start,
# stop the runs (each saves resume.pt), pack every run's resume.pt or finished
# checkpoint and log.tsv into $OUT, which comes back. Run with carry [".carry"]:
#   OUT=... BUDGET=560 PHASES="proof paper" bash scripts/gpu_session.sh
# and afterwards, here: python3 scripts/gpu_carry.py collect <files_at>
# (scripts/gpu_carry.py explains the carry; the variables of train_gpu.sh pass through).
#
# BUDGET: seconds this whole command may take (keep it under the call's timeout_s);
# PACK_RESERVE: seconds kept for stopping the runs and packing (default 90: GRACE 30 for
# the runs to save, then a tar of up to 60 MiB split into parts). A SIGTERM or SIGINT to this script
# stops the runs and packs at once.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
: "${OUT:?set OUT to the folder whose files come back}"
BUDGET=${BUDGET:-560}
PACK_RESERVE=${PACK_RESERVE:-90}
CARRY=${CARRY:-.carry}
export RUNS=${RUNS:-runs/gpu}
export DATA=${DATA:-imagefolder:../shared/datasets/cifar10-jpeg}
export PHASES=${PHASES:-proof paper}
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/session.log") 2>&1

echo "session: $(date -u +%FT%TZ), budget ${BUDGET} s, phases: $PHASES"
python3 scripts/gpu_carry.py --carry "$CARRY" unpack-data --data "$DATA" || exit 1
python3 scripts/gpu_carry.py --carry "$CARRY" unpack --runs "$RUNS" || exit 1
echo "session: unpacked in $((SECONDS - start)) s"

deadline=$((BUDGET - PACK_RESERVE - (SECONDS - start)))
if [ "$deadline" -gt 0 ]; then
  DEADLINE=$deadline bash scripts/train_gpu.sh &
  trainer=$!
  trap 'echo "session: signalled: stopping the runs"; kill -TERM $trainer 2>/dev/null' TERM INT
  wait $trainer
  while kill -0 $trainer 2>/dev/null; do wait $trainer; done  # a trap interrupts wait: wait again
  trap - TERM INT
else
  echo "session: no time left to train ($deadline s)"
fi

echo "session: packing at $((SECONDS - start)) s"
python3 scripts/gpu_carry.py --carry "$CARRY" pack --runs "$RUNS" --out "$OUT"
echo "session: done in $((SECONDS - start)) s"
