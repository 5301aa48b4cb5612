#!/usr/bin/env bash
# Every benchmark of docs/PERFORMANCE.md in one run, on one bundle, writing
# each one's table (and the latency-vs-load plot) into OUT:
#
#   bench/run_all.sh [--out out/bench] [--data-out out/full] [--runs 3]
#
# Uses (and builds, if missing, through scripts/run.sh --scale full) the
# full-scale data, split and bundle in --data-out. Steps, in order:
#   1. server latency: 1000-id and single-id calls, stage breakdown, exact
#      search and the fastest index at recall@12 >= 0.99 (IVF2048/nprobe 24,
#      built beside the bundle by scripts/reindex.sh when missing), the same
#      server with ranking off, and the ranker's two evaluators (forest.tsv)
#   2. latency vs offered load (1000-id and single-id, 1..128 clients) + plot
#   3. client --all-customers for every customer: wall time and customers/s
#   4. index types: search time per 1000 queries and recall@12 vs exact
#   5. trainer examples/s (train_bench.sh) and the data layer (data_bench.sh)
#   6. side by side with the Python PyTorch + faiss batch scorer
# Takes about 30 minutes on the 2-core machine.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
OUT="$ROOT/out/bench"
DATA_OUT="$ROOT/out/full"
RUNS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --data-out) DATA_OUT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
step() { echo "run_all: $*" >&2; }

if [[ ! -e "$DATA_OUT/bundles/current/manifest.pbtxt" ]]; then
  step "no full-scale bundle in $DATA_OUT: building it (scripts/run.sh --scale full)"
  bash "$ROOT/scripts/run.sh" --scale full --out "$DATA_OUT" > "$OUT/run_full.txt"
fi
BUNDLE="$DATA_OUT/bundles/current"
TRAIN="$DATA_OUT/holdout7/train"
uname -a > "$OUT/machine.txt"
lscpu >> "$OUT/machine.txt"

step "1/6 server latency"
bash "$ROOT/bench/server_bench.sh" --bundle "$BUNDLE" --customers "$TRAIN/customers.csv" --runs "$RUNS" \
  --scenarios "1000x1 1000x2 1x64" > "$OUT/server.md"
bash "$ROOT/bench/server_bench.sh" --bundle "$BUNDLE" --customers "$TRAIN/customers.csv" --runs "$RUNS" \
  --scenarios "1000x1 1x64" --set ranking=off > "$OUT/server_retrieval_only.md"
"$BUILD/bench/hmrec_forest_bench" --model "$BUNDLE/ranker.ubj" > "$OUT/forest.tsv"
IVF_NAME="$(basename "$(readlink -f "$BUNDLE")")-ivf2048"
if [[ ! -e "$DATA_OUT/bundles/$IVF_NAME/manifest.pbtxt" ]]; then
  sed -e 's/^index_type: .*/index_type: "ivf"/; s/^ivf_nlist: .*/ivf_nlist: 2048/; s/^ivf_nprobe: .*/ivf_nprobe: 24/' \
    "$ROOT/configs/index_builder.pbtxt" > "$OUT/index_builder_ivf2048.pbtxt"
  bash "$ROOT/scripts/reindex.sh" "$BUNDLE" "$IVF_NAME" "$OUT/index_builder_ivf2048.pbtxt" "$TRAIN" 2> "$OUT/reindex.log"
fi
bash "$ROOT/bench/server_bench.sh" --bundle "$DATA_OUT/bundles/$IVF_NAME" --customers "$TRAIN/customers.csv" \
  --runs "$RUNS" --scenarios "1000x1 1000x2 1x64" --set ivf_nprobe=24 > "$OUT/server_ivf2048.md"
step "2/6 latency vs load"
bash "$ROOT/bench/server_bench.sh" --bundle "$BUNDLE" --customers "$TRAIN/customers.csv" --runs "$RUNS" --duration 8 \
  --scenarios "1000x1 1000x2 1000x4 1x1 1x8 1x32 1x64 1x128" --json "$OUT/latency_vs_load.jsonl" > "$OUT/latency_vs_load.md"
/usr/bin/python3 "$ROOT/scripts/plot_load.py" "$OUT/latency_vs_load.jsonl" "$OUT/latency_vs_load.png"

step "3/6 client --all-customers"
"$BUILD/server/hmrec_server" --config "$ROOT/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --bundle "$BUNDLE" 2> "$OUT/client_server.log" &
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q "listening on" "$OUT/client_server.log" && break; sleep 0.2; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$OUT/client_server.log" | grep -o '[0-9]*$')
/usr/bin/time -v "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --quiet \
  > "$OUT/submission.csv" 2> "$OUT/client.txt"
kill -TERM $SERVER_PID && wait $SERVER_PID || true
trap - EXIT

step "4/6 index types"
"$BUILD/bench/hmrec_index_bench" --bundle "$BUNDLE" --runs 5 > "$OUT/index.md"
# The two-tower source's search (k = the ranking's two_tower_candidates) and
# the CPU's int8 peak it is measured against, when the CPU has AVX-512 VNNI.
"$BUILD/bench/hmrec_index_bench" --bundle "$BUNDLE" --runs 5 --types blocked --k 24 > "$OUT/index_k24.md"
"$BUILD/bench/hmrec_vnni_peak" > "$OUT/vnni_peak.txt" || echo "run_all: no AVX-512 VNNI, no int8 peak" >&2
/usr/bin/python3 "$ROOT/scripts/plot_index.py" "$OUT/index.md" "$OUT/index_tradeoffs.png"
step "5/6 trainer and data layer"
bash "$ROOT/bench/train_bench.sh" --data "$TRAIN" --runs "$RUNS" > "$OUT/train.md"
bash "$ROOT/bench/data_bench.sh" --scale full --runs "$RUNS" > "$OUT/data.md"
step "6/6 side by side with Python"
bash "$ROOT/bench/side_by_side.sh" --bundle "$BUNDLE" --customers "$TRAIN/sample_submission.csv" --runs "$RUNS" \
  > "$OUT/side_by_side.md"
step "done: tables in $OUT (*.md), plots $OUT/latency_vs_load.png, $OUT/index_tradeoffs.png"
