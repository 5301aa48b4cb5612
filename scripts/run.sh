#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine: installs what is missing,
# builds, generates the `small` dataset (or takes your Kaggle CSVs), holds
# out the last week, trains the two-tower model and the ranking stage
# (candidate sources, features, XGBoost ranker), builds the servable bundle,
# starts the server, writes submission.csv for every customer through it with
# the batch client (ranked), and prints MAP@12 of the ranked list, of the
# two-tower retrieval alone (the same server with ranking off) and of the
# baselines.
#
#   scripts/run.sh                          # generated small data, 7-day holdout
#   scripts/run.sh --scale tiny|small|full
#   scripts/run.sh --data DIR               # your articles.csv, customers.csv,
#                                           # transactions_train.csv; no holdout:
#                                           # trains on everything, writes submission.csv
#   scripts/run.sh --data DIR --holdout-days 7
#   scripts/run.sh --out DIR                # where outputs go
#
# Re-running reuses the build, the generated data, the parsed-data cache and
# the trained bundle (retrained when the trainer, its config or the data change).
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
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
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

# The two-tower model: train, evaluate on the holdout (exact search), export a
# bundle, make it servable. Reused when the trainer, its config and the data
# are unchanged.
TRAINER_ARGS=(--config "$ROOT/configs/trainer.pbtxt" --data "$TRAIN" --work_dir "$OUT/train"
              --bundles "$OUT/bundles")
if [[ -n "$HOLDOUT" ]]; then TRAINER_ARGS+=(--holdout "$SPLIT/truth.csv"); fi
stamp="$(sha1sum "$BUILD/trainer/hmrec_trainer" "$BUILD/index_builder/hmrec_index_builder" "$ROOT/configs/trainer.pbtxt" \
  "$ROOT/configs/index_builder.pbtxt" | cut -c1-12 | tr '\n' ' ') $(stat -c '%s %Y' "$TRAIN/transactions_train.csv") holdout=$HOLDOUT"
if [[ -f "$OUT/bundles/.stamp" && $(cat "$OUT/bundles/.stamp") == "$stamp" && -e "$OUT/bundles/current/manifest.pbtxt" ]]; then
  echo "run.sh: reusing the trained, servable bundle $(readlink "$OUT/bundles/current")" >&2
else
  rm -rf "$OUT/train"
  BUNDLE=$("$BUILD/trainer/hmrec_trainer" "${TRAINER_ARGS[@]}")
  echo "run.sh: bundle $BUNDLE (training curve: $OUT/train/training_curve.png)" >&2
  # Make it servable: faiss index, RocksDB feature store, fallback; seal; make current.
  "$BUILD/index_builder/hmrec_index_builder" --config "$ROOT/configs/index_builder.pbtxt" \
    --bundle "$BUNDLE" --data "$TRAIN"
  echo "$stamp" > "$OUT/bundles/.stamp"
fi

# Serve it on 127.0.0.1 and write the submission through the server, as a
# user of the service would; stop the server afterwards. With a holdout, the
# same bundle is served once more with ranking off: the retrieval-only line.
# Recorded purchases are off here: the submission is the bundle's own, and
# events replayed into $OUT/events earlier (hmrec_client --record) must not
# leak held-out days into these scores.
serve_and_write() {  # serve_and_write RANKING OUT_CSV LOG
  "$BUILD/server/hmrec_server" --config "$ROOT/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
    --bundle "$OUT/bundles/current" --ranking "$1" --events off 2> "$3" &
  SERVER_PID=$!
  trap 'kill -TERM $SERVER_PID 2>/dev/null && wait $SERVER_PID 2>/dev/null' EXIT
  for _ in $(seq 1 600); do
    grep -q "listening on" "$3" && break
    kill -0 $SERVER_PID 2>/dev/null || { cat "$3" >&2; echo "run.sh: the server did not start" >&2; exit 1; }
    sleep 0.2
  done
  PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$3" | grep -o '[0-9]*$')
  echo "run.sh: $(grep -m1 'listening on' "$3" | sed 's/^server: //'); $(grep -m1 'search kernel' "$3" | sed 's/^server: //'); log in $3" >&2
  "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" > "$2.tmp"
  mv "$2.tmp" "$2"
  kill -TERM $SERVER_PID && wait $SERVER_PID
  trap - EXIT
}
serve_and_write on "$OUT/submission.csv" "$OUT/server.log"
echo "run.sh: wrote $OUT/submission.csv through the server" >&2

if [[ -n "$HOLDOUT" ]]; then
  serve_and_write off "$OUT/submissions/retrieval_only.csv" "$OUT/server_retrieval.log"
  echo
  echo "MAP@12 on the last $HOLDOUT days held out ($OUT):"
  for kind in popular age recent; do
    "$EVALUATE" score --truth "$SPLIT/truth.csv" --submission "$OUT/submissions/$kind.csv" \
      --customers "$TRAIN/customers.csv" --json "$OUT/metrics/$kind.json" --label "baseline: $kind" --quiet
  done
  "$EVALUATE" score --truth "$SPLIT/truth.csv" --submission "$OUT/submissions/retrieval_only.csv" \
    --customers "$TRAIN/customers.csv" --json "$OUT/metrics/two_tower.json" --label "two-tower only (served)" --quiet
  "$EVALUATE" score --truth "$SPLIT/truth.csv" --submission "$OUT/submission.csv" \
    --customers "$TRAIN/customers.csv" --json "$OUT/metrics/ranked.json" --label "ranked (served)" --quiet
  offline=$(grep -A1 'name: "ranked_holdout_map_at_12"' "$OUT/bundles/current/manifest.pbtxt" | grep -o 'value: [0-9.e-]*' | cut -d' ' -f2 || true)
  if [[ -n "$offline" ]]; then printf 'ranked (trainer, offline)    MAP@12 %.5f\n' "$offline"; fi
fi
