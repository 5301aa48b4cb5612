#!/usr/bin/env bash
# MAP@12 of the baselines, of the two-tower model and (with the config's
# ranking stage) of the fixed-rule merge of the candidates and of the ranker,
# over several generated datasets (one per seed), as Markdown tables with the
# median, and the recall of each candidate source: the figures of
# docs/QUALITY.md.
#
#   scripts/baselines_report.sh [--scale small] [--seeds "1 2 3"] [--holdout-days 7] [--dir /tmp/x]
#                               [--no-model] [--config configs/trainer.pbtxt]
#                               [--world bench/worlds/half_rebuy.pbtxt]
#
# --world generates the datasets with that DatagenConfig over the --scale
# preset (a differently parameterised world: a change to the candidates or
# features is kept only if it helps on the default world and on others).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
SCALE=small
SEEDS="1 2 3"
HOLDOUT=7
DIR=""
MODEL=1
CONFIG="$ROOT/configs/trainer.pbtxt"
WORLD=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --holdout-days) HOLDOUT=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --no-model) MODEL=0; shift ;;
    --config) CONFIG=$2; shift 2 ;;
    --world) WORLD=(--config "$2"); shift 2 ;;
    *) echo "baselines_report.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
DIR=${DIR:-$(mktemp -d)}
KINDS="popular age recent"

for seed in $SEEDS; do
  d="$DIR/$SCALE-$seed"
  "$BUILD/datagen/hmrec_datagen" --scale "$SCALE" "${WORLD[@]}" --seed "$seed" --out "$d/data" --quiet
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
    if [[ -f "$d/train/ranking/ranking_report.json" ]]; then
      python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
h = json.load(open(f"{d}/train/ranking/ranking_report.json"))["holdout"]
json.dump({"map_at_12": h["map_heuristic"], "recall_at_12": float("nan")}, open(f"{d}/fixed-rule merge.json", "w"))
json.dump({"map_at_12": h["map_ranked"], "recall_at_12": h["recall12_ranked"]}, open(f"{d}/ranked.json", "w"))
PY
    fi
  fi
done
if [[ $MODEL == 1 ]]; then KINDS="$KINDS two-tower"; fi
if [[ -f "$DIR/$SCALE-${SEEDS%% *}/ranked.json" ]]; then KINDS="$KINDS fixed-rule_merge ranked"; fi

python3 - "$DIR" "$SCALE" "$HOLDOUT" "$SEEDS" $KINDS <<'PY'
import json, math, os, statistics, sys
d, scale, holdout, seeds, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5:]
kinds = [k.replace("_", " ") for k in kinds]
print(f"| baseline ({scale}, last {holdout} days held out) | " + " | ".join(f"seed {s}" for s in seeds) + " | median MAP@12 | median recall@12 |")
print("| --- |" + " --- |" * (len(seeds) + 2))
for k in kinds:
    m = [json.load(open(f"{d}/{scale}-{s}/{k}.json")) for s in seeds]
    maps = [x["map_at_12"] for x in m]
    rec = [x["recall_at_12"] for x in m]
    med_rec = statistics.median(rec) if not any(math.isnan(r) for r in rec) else float("nan")
    print(f"| {k} | " + " | ".join(f"{v:.5f}" for v in maps) +
          f" | **{statistics.median(maps):.5f}** | " + ("-" if math.isnan(med_rec) else f"{med_rec:.4f}") + " |")
if "two-tower" in kinds:
    gap = [json.load(open(f"{d}/{scale}-{s}/two-tower.json"))["map_at_12"] /
           json.load(open(f"{d}/{scale}-{s}/popular.json"))["map_at_12"] for s in seeds]
    print(f"\ntwo-tower / popular MAP@12: " + ", ".join(f"{g:.2f}x" for g in gap) +
          f" (median {statistics.median(gap):.2f}x)")
if "ranked" in kinds:
    best = lambda s: max(json.load(open(f"{d}/{scale}-{s}/{k}.json"))["map_at_12"] for k in ("popular", "age", "recent"))
    gap = [json.load(open(f"{d}/{scale}-{s}/ranked.json"))["map_at_12"] / best(s) for s in seeds]
    print(f"\nranked / best baseline MAP@12: " + ", ".join(f"{g:.2f}x" for g in gap) +
          f" (median {statistics.median(gap):.2f}x)")
    reports = [json.load(open(f"{d}/{scale}-{s}/train/ranking/ranking_report.json")) for s in seeds]
    srcs = ["repurchase", "two_tower", "copurchase", "same_product", "segment_popular", "trending", "taste", "new_arrival", "neighbours", "style_buyers"]
    print("\n| recall of the held-out articles among | " + " | ".join(f"seed {s}" for s in seeds) + " | median |")
    print("| --- |" + " --- |" * (len(seeds) + 1))
    for src in srcs + ["merged"]:
        key = "recall_merged" if src == "merged" else f"recall_{src}"
        v = [r["holdout"][key] for r in reports]
        print(f"| {src} | " + " | ".join(f"{x:.4f}" for x in v) + f" | {statistics.median(v):.4f} |")
    v = [r["holdout"]["candidates_per_customer"] for r in reports]
    print(f"| (candidates per customer) | " + " | ".join(f"{x:.1f}" for x in v) + f" | {statistics.median(v):.1f} |")
print(f"\nscored customers (bought in the held-out days): " +
      ", ".join(str(json.load(open(f'{d}/{scale}-{s}/popular.json'))['truth_customers']) for s in seeds))
PY
