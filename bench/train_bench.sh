#!/usr/bin/env bash
# Trainer throughput: one epoch at the default configuration, RUNS times,
# one process per run; prints the median examples/s and epoch time.
#
#   bench/train_bench.sh --data out/full/holdout7/train [--runs 3] [--config configs/trainer.pbtxt]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
DATA=""
RUNS=3
CONFIG="$ROOT/configs/trainer.pbtxt"
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --device) EXTRA+=(--device "$2"); shift 2 ;;
    *) echo "train_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" ]] || { echo "train_bench.sh: --data DIR is required" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for ((i = 0; i < RUNS; ++i)); do
  rm -rf "$WORK/run"
  "$BUILD/trainer/hmrec_trainer" --config "$CONFIG" --data "$DATA" --work_dir "$WORK/run/work" \
    --bundles "$WORK/run/bundles" --epochs 1 "${EXTRA[@]}" 2>&1 >/dev/null \
    | grep -E "^epoch 1: |examples, device" | tee -a "$WORK/log" >&2
done
python3 - "$WORK/log" "$DATA" "$RUNS" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
rates = [float(x) for x in re.findall(r"loss [0-9.]+, ([0-9.]+) examples/s", text)]
secs = [float(x) for x in re.findall(r"examples/s, ([0-9.]+) s", text)]
n = re.search(r"trainer: (\d+) examples", text)
print(f"| {sys.argv[2]} | {n.group(1) if n else '?'} | {statistics.median(rates):.0f} | "
      f"{min(rates):.0f}-{max(rates):.0f} | {statistics.median(secs):.1f} | {sys.argv[3]} |")
PY
