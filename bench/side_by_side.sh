#!/usr/bin/env bash
# The service against the approach a data scientist would take instead, same
# bundle, customers and machine: bench/python_scorer.py (PyTorch tower +
# faiss exact search in batches of 1000, in-process, features already in
# memory) vs hmrec_client --all-customers through a running hmrec_server
# (RocksDB lookup, tower, exact search, gRPC), RUNS times each; prints the
# medians and the ratio, and how many rows of the two submissions agree.
#
#   bench/side_by_side.sh --bundle out/full/bundles/current \
#       --customers out/full/holdout7/train/sample_submission.csv [--count 200000] [--runs 3]
#
# Python runs with OPENBLAS_CORETYPE as hmrec's programs choose it (see
# README, "Threads and devices"), so both sides use the same BLAS kernels.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE=""; CUSTOMERS=""; COUNT=200000; RUNS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "side_by_side.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "side_by_side.sh: --bundle and --customers are required" >&2; exit 2; }
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

head -n $((COUNT + 1)) "$CUSTOMERS" > "$WORK/customers.csv"
"$BUILD/bench/hmrec_export_features" --bundle "$BUNDLE" --customers "$WORK/customers.csv" --out "$WORK" 2> "$WORK/export.log" \
  || { cat "$WORK/export.log" >&2; exit 1; }
CORE=$(grep -o 'OPENBLAS_CORETYPE=[A-Za-z]*' "$WORK/export.log" | head -1 | cut -d= -f2 || true)
CORE=${OPENBLAS_CORETYPE:-$CORE}
for ((r = 0; r < RUNS; ++r)); do
  OPENBLAS_CORETYPE=$CORE /usr/bin/python3 "$ROOT/bench/python_scorer.py" "$BUNDLE" "$WORK" "$WORK/customers.csv" \
    "$WORK/python.csv" --batch 1000 --threads 2 | tee -a "$WORK/python.jsonl" >&2
done

"$BUILD/server/hmrec_server" --config "$ROOT/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --bundle "$BUNDLE" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do grep -q "listening on" "$WORK/server.log" && break; sleep 0.2; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
for ((r = 0; r < RUNS; ++r)); do
  "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --all-customers --customers "$WORK/customers.csv" --quiet \
    > "$WORK/hmrec.csv" 2> "$WORK/client.log"
  grep "customers in" "$WORK/client.log" | tail -1 | tee -a "$WORK/hmrec.log" >&2
done

/usr/bin/python3 - "$WORK" "$COUNT" "${CORE:-autodetected}" <<'PY'
import json, re, statistics, sys
w = sys.argv[1]
py = statistics.median(json.loads(l)["seconds"] for l in open(f"{w}/python.jsonl"))
ours = statistics.median(float(re.search(r"customers in ([0-9.]+) s", l).group(1)) for l in open(f"{w}/hmrec.log"))
a = [l.rstrip("\n").split(",") for l in open(f"{w}/hmrec.csv")][1:]
b = [l.rstrip("\n").split(",") for l in open(f"{w}/python.csv")][1:]
assert [x[0] for x in a] == [x[0] for x in b], "the two submissions list different customers"
same = sum(x[1] == y[1] for x, y in zip(a, b))
n = len(a)
print(f"| approach | {n:,} customers, s (median) | customers/s |")
print("| --- | --- | --- |")
print(f"| Python: PyTorch tower + faiss IndexFlatIP, batches of 1000, in-process (OpenBLAS {sys.argv[3]}) | {py:.1f} | {n / py:,.0f} |")
print(f"| hmrec: client -> gRPC -> server (RocksDB, tower, exact search) | {ours:.1f} | {n / ours:,.0f} |")
print(f"ratio: hmrec is {py / ours:.2f}x the Python scorer's speed; identical rows: {same:,} of {n:,}")
PY
