#!/usr/bin/env bash
# Trainer throughput: one epoch at the default configuration, RUNS times;
# prints the median examples/s and epoch time (the ranking stage is off).
# --ranks N runs N data-parallel processes on this machine (127.0.0.1, each
# with threads / N intra-op threads, so the cores stay equally busy) and adds
# the time per step spent in collectives (all-gathers and all-reduces).
#
#   bench/train_bench.sh --data out/full/holdout7/train [--runs 3] [--config configs/trainer.pbtxt] [--ranks 2]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
DATA=""
RUNS=3
CONFIG="$ROOT/configs/trainer.pbtxt"
EXTRA=()
RANKS=1
THREADS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --device) EXTRA+=(--device "$2"); shift 2 ;;
    --ranks) RANKS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "train_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" ]] || { echo "train_bench.sh: --data DIR is required" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

PER_RANK=$(( THREADS / RANKS > 0 ? THREADS / RANKS : 1 ))
for ((i = 0; i < RUNS; ++i)); do
  rm -rf "$WORK/run"
  if (( RANKS == 1 )); then
    "$BUILD/trainer/hmrec_trainer" --config "$CONFIG" --data "$DATA" --work_dir "$WORK/run/work" \
      --bundles "$WORK/run/bundles" --epochs 1 --ranking=false --threads "$THREADS" "${EXTRA[@]}" 2>&1 >/dev/null \
      | grep -E "^epoch 1: |examples, device" | tee -a "$WORK/log" >&2
  else
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pids=()
    for ((r = 0; r < RANKS; ++r)); do
      MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT WORLD_SIZE=$RANKS RANK=$r GLOO_SOCKET_IFNAME=lo \
        "$BUILD/trainer/hmrec_trainer" --config "$CONFIG" --data "$DATA" --work_dir "$WORK/run/work$r" \
        --bundles "$WORK/run/bundles$r" --epochs 1 --ranking=false --threads "$PER_RANK" "${EXTRA[@]}" \
        > /dev/null 2> "$WORK/rank$r.log" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { tail -3 "$WORK"/rank*.log >&2; exit 1; }; done
    grep -E "^epoch 1: |examples, device" "$WORK/rank0.log" | tee -a "$WORK/log" >&2
  fi
done
python3 - "$WORK/log" "$DATA" "$RUNS" "$RANKS" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
rates = [float(x) for x in re.findall(r"loss [0-9.]+, ([0-9.]+) examples/s", text)]
secs = [float(x) for x in re.findall(r"examples/s, ([0-9.]+) s", text)]
coll = [float(x) for x in re.findall(r"collectives ([0-9.]+) ms/step", text)]
n = re.search(r"trainer: (\d+) examples", text)
print(f"| {sys.argv[2]} | {sys.argv[4]} | {n.group(1) if n else '?'} | {statistics.median(rates):.0f} | "
      f"{min(rates):.0f}-{max(rates):.0f} | {statistics.median(secs):.1f} | "
      f"{statistics.median(coll) if coll else 0:.2f} | {sys.argv[3]} |")
PY
