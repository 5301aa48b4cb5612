#!/usr/bin/env bash
# Data-layer benchmark: generate a dataset (default full scale), then time
# CSV parsing, cache writing and cached reloads, RUNS times each, one process
# per run; prints medians and peak memory as a Markdown table.
#
#   bench/data_bench.sh [--scale full] [--dir /tmp/hmrec_full] [--runs 3]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
SCALE=full
DIR=""
RUNS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "data_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
DIR=${DIR:-/tmp/hmrec_bench_$SCALE}
BENCH="$BUILD/bench/hmrec_data_load_bench"
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { python3 -c "import json,sys; [print(json.loads(l)['$1']) for l in sys.stdin]"; }

if [[ ! -f "$DIR/.complete" ]]; then
  start=$(date +%s.%N)
  "$BUILD/datagen/hmrec_datagen" --scale "$SCALE" --out "$DIR"
  end=$(date +%s.%N)
  echo "datagen_seconds $(python3 -c "print($end - $start)")" >> "$RESULTS"
  touch "$DIR/.complete"
fi
rm -rf "$DIR/.hmrec_cache"

for mode in parse write cached; do
  for ((i = 0; i < RUNS; ++i)); do
    if [[ $mode == write ]]; then rm -rf "$DIR/.hmrec_cache"; fi
    "$BENCH" --data "$DIR" --mode "$mode" | tee -a "$RESULTS.$mode" >&2
  done
done

echo
echo "| step | median s | runs | peak RSS MiB (max) |"
echo "| --- | --- | --- | --- |"
grep -h datagen_seconds "$RESULTS" | awk '{ printf "| datagen --scale '"$SCALE"' | %.1f | 1 | |\n", $2 }'
for mode in parse write cached; do
  s=$(field seconds < "$RESULTS.$mode" | median)
  m=$(field peak_rss_mib < "$RESULTS.$mode" | sort -n | tail -1)
  echo "| load ($mode) | $s | $RUNS | $m |"
  rm -f "$RESULTS.$mode"
done
echo "| transactions_train.csv MiB | $(( $(stat -c %s "$DIR/transactions_train.csv") >> 20 )) | | |"
echo "| cache MiB | $(( $(stat -c %s "$DIR/.hmrec_cache/dataset.bin") >> 20 )) | | |"
echo "| transactions | $(field transactions < <("$BENCH" --data "$DIR" --mode cached)) | | |"
