#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine: installs what is missing,
# builds, generates the `small` dataset (or takes your Kaggle CSVs), holds
# out the last week, writes the baseline submissions and prints their MAP@12.
#
#   scripts/run.sh                          # generated small data, 7-day holdout
#   scripts/run.sh --scale tiny|small|full
#   scripts/run.sh --data DIR               # your articles.csv, customers.csv,
#                                           # transactions_train.csv; no holdout
#   scripts/run.sh --data DIR --holdout-days 7
#   scripts/run.sh --out DIR                # where outputs go
#
# Re-running reuses the build, the generated data and the parsed-data cache.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}

SCALE=small
DATA=""
HOLDOUT=""
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --holdout-days) HOLDOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$SCALE" in tiny|small|full) ;; *) echo "run.sh: --scale must be tiny, small or full" >&2; exit 2 ;; esac

if [[ -n "$DATA" ]]; then
  DATA=$(cd "$DATA" && pwd)
  OUT=${OUT:-$ROOT/out/$(basename "$DATA")}
else
  HOLDOUT=${HOLDOUT:-7}
  OUT=${OUT:-$ROOT/out/$SCALE}
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "run.sh: outputs go to $OUT" >&2

bash "$ROOT/scripts/build.sh"
DATAGEN="$BUILD/datagen/hmrec_datagen"
EVALUATE="$BUILD/evaluate/hmrec_evaluate"

if [[ -z "$DATA" ]]; then
  DATA="$OUT/data"
  stamp="scale=$SCALE datagen=$(sha1sum "$DATAGEN" | cut -c1-12)"
  if [[ -f "$DATA/.complete" && $(cat "$DATA/.complete") == "$stamp" ]]; then
    echo "run.sh: reusing generated $SCALE data in $DATA" >&2
  else
    "$DATAGEN" --scale "$SCALE" --out "$DATA"
    echo "$stamp" > "$DATA/.complete"
  fi
fi

if [[ -n "$HOLDOUT" ]]; then
  SPLIT="$OUT/holdout$HOLDOUT"
  if [[ ! -f "$SPLIT/.complete" || "$DATA/transactions_train.csv" -nt "$SPLIT/.complete" ]]; then
    "$EVALUATE" split --data "$DATA" --holdout_days "$HOLDOUT" --out "$SPLIT"
    touch "$SPLIT/.complete"
  fi
  TRAIN="$SPLIT/train"
else
  TRAIN="$DATA"
fi

mkdir -p "$OUT/submissions" "$OUT/metrics"
for kind in popular age recent; do
  "$EVALUATE" baseline --data "$TRAIN" --kind "$kind" --out "$OUT/submissions/$kind.csv"
done

# The two-tower model: train, evaluate on the holdout (exact search), export a bundle.
TRAINER_ARGS=(--config "$ROOT/configs/trainer.pbtxt" --data "$TRAIN" --work_dir "$OUT/train"
              --bundles "$OUT/bundles")
if [[ -n "$HOLDOUT" ]]; then TRAINER_ARGS+=(--holdout "$SPLIT/truth.csv"); fi
rm -rf "$OUT/train"
BUNDLE=$("$BUILD/trainer/hmrec_trainer" "${TRAINER_ARGS[@]}")
echo "run.sh: bundle $BUNDLE (training curve: $OUT/train/training_curve.png)" >&2
# Make it servable: faiss index, RocksDB feature store, fallback; seal; make current.
"$BUILD/index_builder/hmrec_index_builder" --config "$ROOT/configs/index_builder.pbtxt" \
  --bundle "$BUNDLE" --data "$TRAIN"

if [[ -n "$HOLDOUT" ]]; then
  echo
  echo "MAP@12 on the last $HOLDOUT days held out ($OUT):"
  for kind in popular age recent; do
    "$EVALUATE" score --truth "$SPLIT/truth.csv" --submission "$OUT/submissions/$kind.csv" \
      --customers "$TRAIN/customers.csv" --json "$OUT/metrics/$kind.json" --label "baseline: $kind" --quiet
  done
  python3 - "$OUT/train/training_metrics.jsonl" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(f"{'two-tower (exact search)':<28} MAP@12 {m['map_at_12']:.5f}  recall@12 {m['recall_at_12']:.4f}  "
      f"after {m['epoch']} epochs")
PY
else
  cp "$OUT/submissions/recent.csv" "$OUT/submission.csv"
  echo "run.sh: no holdout: wrote $OUT/submission.csv (recent-purchases baseline) for every customer" >&2
fi
