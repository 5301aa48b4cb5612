#!/usr/bin/env bash
# MAP@12 of the baselines and of the two-tower model over several generated
# datasets (one per seed), as a Markdown table with the median: the figures
# of docs/QUALITY.md.
#
#   scripts/baselines_report.sh [--scale small] [--seeds "1 2 3"] [--holdout-days 7] [--dir /tmp/x]
#                               [--no-model] [--config configs/trainer.pbtxt]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
SCALE=small
SEEDS="1 2 3"
HOLDOUT=7
DIR=""
MODEL=1
CONFIG="$ROOT/configs/trainer.pbtxt"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --holdout-days) HOLDOUT=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --no-model) MODEL=0; shift ;;
    --config) CONFIG=$2; shift 2 ;;
    *) echo "baselines_report.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
DIR=${DIR:-$(mktemp -d)}
KINDS="popular age recent"

for seed in $SEEDS; do
  d="$DIR/$SCALE-$seed"
  "$BUILD/datagen/hmrec_datagen" --scale "$SCALE" --seed "$seed" --out "$d/data" --quiet
  "$BUILD/evaluate/hmrec_evaluate" split --data "$d/data" --holdout_days "$HOLDOUT" --out "$d/split" --quiet
  for kind in $KINDS; do
    "$BUILD/evaluate/hmrec_evaluate" baseline --data "$d/split/train" --kind "$kind" --out "$d/$kind.csv" --quiet 2>/dev/null
    "$BUILD/evaluate/hmrec_evaluate" score --truth "$d/split/truth.csv" --submission "$d/$kind.csv" \
      --json "$d/$kind.json" --label "$kind" --quiet > /dev/null 2>&1
  done
  if [[ $MODEL == 1 ]]; then
    rm -rf "$d/train" "$d/bundles"
    "$BUILD/trainer/hmrec_trainer" --config "$CONFIG" --data "$d/split/train" --holdout "$d/split/truth.csv" \
      --work_dir "$d/train" --bundles "$d/bundles" --eval_max_customers 0 --quiet > /dev/null
    tail -1 "$d/train/training_metrics.jsonl" > "$d/two-tower.json"
  fi
done
if [[ $MODEL == 1 ]]; then KINDS="$KINDS two-tower"; fi

python3 - "$DIR" "$SCALE" "$HOLDOUT" "$SEEDS" $KINDS <<'PY'
import json, statistics, sys
d, scale, holdout, seeds, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5:]
print(f"| baseline ({scale}, last {holdout} days held out) | " + " | ".join(f"seed {s}" for s in seeds) + " | median MAP@12 | median recall@12 |")
print("| --- |" + " --- |" * (len(seeds) + 2))
for k in kinds:
    m = [json.load(open(f"{d}/{scale}-{s}/{k}.json")) for s in seeds]
    maps = [x["map_at_12"] for x in m]
    rec = [x["recall_at_12"] for x in m]
    print(f"| {k} | " + " | ".join(f"{v:.5f}" for v in maps) +
          f" | **{statistics.median(maps):.5f}** | {statistics.median(rec):.4f} |")
if "two-tower" in kinds:
    gap = [json.load(open(f"{d}/{scale}-{s}/two-tower.json"))["map_at_12"] /
           json.load(open(f"{d}/{scale}-{s}/popular.json"))["map_at_12"] for s in seeds]
    print(f"\ntwo-tower / popular MAP@12: " + ", ".join(f"{g:.2f}x" for g in gap) +
          f" (median {statistics.median(gap):.2f}x)")
print(f"\nscored customers (bought in the held-out days): " +
      ", ".join(str(json.load(open(f'{d}/{scale}-{s}/popular.json'))['truth_customers']) for s in seeds))
PY
