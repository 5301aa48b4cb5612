#!/usr/bin/env bash
# The cost of API keys (docs/PERFORMANCE.md "Auth"): two servers on the same
# bundle, one without auth and one with a keys file of KEYS clients, loaded
# in turn (A B, B A, A B, ...: drift of the machine and the order hit both
# alike) by
# hmrec_load_bench over gRPC on 127.0.0.1: a 1000-id call from one client
# (p50) and single-id calls from 64 clients (customers/s). Prints the medians
# and the relative cost.
#
#   bench/auth_cost.sh --bundle out/small/bundles/current --customers out/small/data/customers.csv \
#       [--pairs 5] [--duration 10] [--keys 100]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE="" CUSTOMERS="" PAIRS=5 DURATION=10 KEYS=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    *) echo "auth_cost.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "auth_cost.sh: --bundle and --customers are required" >&2; exit 2; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# KEYS clients; the load uses the last one (the lookup compares every hash).
for i in $(seq 1 "$KEYS"); do
  bash "$ROOT/scripts/make_api_key.sh" "client-$i" recommend "$WORK/key-$i" "$WORK/keys" 2> /dev/null
done
cp "$ROOT/configs/server.pbtxt" "$WORK/off.pbtxt"
cp "$ROOT/configs/server.pbtxt" "$WORK/on.pbtxt"
echo "auth { keys_file: \"$WORK/keys\" }" >> "$WORK/on.pbtxt"
declare -A PORT
for mode in off on; do
  "$BUILD/server/hmrec_server" --config "$WORK/$mode.pbtxt" --listen 127.0.0.1:0 --metrics off --events off \
    --bundle "$BUNDLE" 2> "$WORK/$mode.log" &
  PIDS+=($!)
  for _ in $(seq 1 300); do grep -q "listening on" "$WORK/$mode.log" && break; sleep 0.2; done
  PORT[$mode]=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/$mode.log" | grep -o '[0-9]*$')
done
load() {  # load MODE IDS CLIENTS SECONDS
  local key=()
  [[ $1 == on ]] && key=(--api_key_file "$WORK/key-$KEYS")
  "$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:${PORT[$1]}" --customers "$CUSTOMERS" "${key[@]}" \
    --ids_per_request "$2" --concurrency "$3" --duration_s "$4" --warmup_s 1
}
for mode in off on; do load "$mode" 1000 2 3 > /dev/null; done  # warm-up
echo "auth_cost: $PAIRS pairs of ${DURATION}s runs, $KEYS keys, CPU: $(lscpu | sed -n 's/^Model name: *//p')" >&2
: > "$WORK/results.txt"
for pair in $(seq 1 "$PAIRS"); do
  order="off on"
  ((pair % 2 == 0)) && order="on off"
  for scenario in 1000x1 1x64; do
    for mode in $order; do
      load "$mode" "${scenario%x*}" "${scenario#*x}" "$DURATION" > "$WORK/run.json"
      /usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["failed"] == 0, r
print(sys.argv[2], sys.argv[3], r["customers_per_s"], r["p50_ms"], r["p99_ms"])' "$WORK/run.json" "$scenario" "$mode" \
        | tee -a "$WORK/results.txt" >&2
    done
  done
done
/usr/bin/python3 - "$WORK/results.txt" << 'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    scenario, mode, cps, p50, p99 = line.split()
    rows.setdefault((scenario, mode), []).append((float(cps), float(p50), float(p99)))
print("| scenario | auth | customers/s | p50 ms | p99 ms |")
print("| --- | --- | --- | --- | --- |")
for (scenario, mode), r in rows.items():
    med = lambda i: statistics.median(x[i] for x in r)
    print(f"| {scenario} | {mode} | {med(0):,.0f} | {med(1):.2f} | {med(2):.2f} |")
for scenario, what, i, worse in (("1000x1", "p50", 1, 1), ("1x64", "customers/s", 0, -1)):
    off = statistics.median(x[i] for x in rows[(scenario, "off")])
    on = statistics.median(x[i] for x in rows[(scenario, "on")])
    print(f"{scenario} {what}: {off:.2f} without auth, {on:.2f} with: {worse * (on - off) / off * 100:+.1f}% cost")
PY
# What one check costs, alone (the call's key against KEYS hashes).
"$BUILD/bench/hmrec_auth_bench" --keys "$KEYS"
