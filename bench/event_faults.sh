#!/usr/bin/env bash
# Recommend's latency while the shared event store fails
# (docs/PERFORMANCE.md "Event store faults"): a real redis-server and
# hmrec_server (events on Redis) on 127.0.0.1, loaded by hmrec_load_bench
# with CLIENTS single-id clients, RUNS runs of DURATION s each with Redis
# healthy, hung (SIGSTOP: connections accepted, never answered) and down
# (killed). Prints the medians of customers/s and p99, and failed calls.
#
#   bench/event_faults.sh --bundle out/small/bundles/current --customers out/small/data/customers.csv \
#       [--runs 3] [--duration 10] [--clients 64]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE="" CUSTOMERS="" RUNS=3 DURATION=10 CLIENTS=64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    *) echo "event_faults.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "event_faults.sh: --bundle and --customers are required" >&2; exit 2; }
WORK=$(mktemp -d)
SERVER="" REDIS=""
cleanup() {
  [[ -n "$REDIS" ]] && kill -CONT "$REDIS" 2> /dev/null && kill -9 "$REDIS" 2> /dev/null
  [[ -n "$SERVER" ]] && kill -TERM "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
RPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$WORK" --appendonly yes --appendfsync always --save "" \
  --daemonize no --logfile "$WORK/redis.log" &
REDIS=$!
for _ in $(seq 1 50); do [[ $(redis-cli -p "$RPORT" ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
cp "$ROOT/configs/server.pbtxt" "$WORK/server.pbtxt"
echo "events { backend: \"redis\" redis_address: \"127.0.0.1:$RPORT\" }" >> "$WORK/server.pbtxt"
"$BUILD/server/hmrec_server" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics off --bundle "$BUNDLE" \
  2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 300); do grep -q "listening on" "$WORK/server.log" && break; sleep 0.2; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
load() {
  "$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$PORT" --customers "$CUSTOMERS" --ids_per_request 1 \
    --concurrency "$CLIENTS" --duration_s "$DURATION" --warmup_s 1 || true
}
echo "event_faults: $CLIENTS clients, ${DURATION}s x $RUNS, CPU: $(lscpu | sed -n 's/^Model name: *//p')" >&2
: > "$WORK/results.txt"
for state in healthy hung down; do
  case $state in
    hung) kill -STOP "$REDIS" ;;
    down) kill -CONT "$REDIS"; kill -9 "$REDIS"; wait "$REDIS" 2> /dev/null || true; REDIS="" ;;
  esac
  for _ in $(seq 1 "$RUNS"); do
    load > "$WORK/run.json"
    /usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(sys.argv[2], r["customers_per_s"], r["p50_ms"], r["p99_ms"], r["failed"])' "$WORK/run.json" "$state" \
      | tee -a "$WORK/results.txt" >&2
  done
done
/usr/bin/python3 - "$WORK/results.txt" << 'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    state, cps, p50, p99, failed = line.split()
    rows.setdefault(state, []).append((float(cps), float(p50), float(p99), int(failed)))
print("| Redis | customers/s | p50 ms | p99 ms (runs) | failed calls |")
print("| --- | --- | --- | --- | --- |")
for state, r in rows.items():
    med = lambda i: statistics.median(x[i] for x in r)
    print(f"| {state} | {med(0):,.0f} | {med(1):.1f} | {med(2):.1f} ({' '.join(f'{x[2]:.1f}' for x in r)}) | {sum(x[3] for x in r)} |")
PY
