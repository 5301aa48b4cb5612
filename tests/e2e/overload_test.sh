#!/usr/bin/env bash
# Overload, bounded, on 127.0.0.1: a server whose queue holds at most 60 ids
# gets 16 clients sending 20 ids per call. Calls over the bound must be
# refused with RESOURCE_EXHAUSTED (and nothing else may fail), the accepted
# ones answered; when the load drops to one client, every call succeeds again
# and the server reports the refusals in /metrics.
set -euo pipefail
BUILD=${1:?usage: overload_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: overload_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_tiny_bundle "$BUILD" "$SRC" "$WORK"

cp "$SRC/configs/server.pbtxt" "$WORK/server.pbtxt"
sed -i '/^max_queued_ids:/d; /^max_delay_us:/d; /^max_ids_per_request:/d' "$WORK/server.pbtxt"
printf 'max_queued_ids: 60\nmax_ids_per_request: 60\nmax_delay_us: 20000\n' >> "$WORK/server.pbtxt"
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$WORK/bundles/current"
LOAD="$BUILD/bench/hmrec_load_bench"

"$LOAD" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" --ids_per_request 20 --concurrency 16 \
  --duration_s 3 --warmup_s 0 > "$WORK/over.json" || true
"$LOAD" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" --ids_per_request 20 --concurrency 1 \
  --duration_s 1 --warmup_s 0.5 > "$WORK/after.json" || fail "calls failed after the overload: $(cat "$WORK/after.json")"
/usr/bin/python3 - "$WORK/over.json" "$WORK/after.json" "$MURL" <<'PY' || fail "overload behaviour"
import json, re, sys, urllib.request
over, after = (json.load(open(f)) for f in sys.argv[1:3])
print(f"overload: {over['requests']} answered, refused {over['failures']}, p99 {over['p99_ms']} ms; "
      f"after: {after['requests']} answered, {after['failed']} failed, p99 {after['p99_ms']} ms")
assert over["requests"] > 0, "nothing was answered under overload"
assert set(over["failures"]) == {"RESOURCE_EXHAUSTED"}, f"expected only RESOURCE_EXHAUSTED refusals: {over['failures']}"
assert after["failed"] == 0 and after["requests"] > 0
metrics = urllib.request.urlopen(sys.argv[3], timeout=10).read().decode()
m = re.search(r'^hmrec_request_duration_seconds_count\{arm="none",caller="anonymous",code="RESOURCE_EXHAUSTED",method="Recommend"\} (\S+)$', metrics, re.M)
assert m and float(m.group(1)) == over["failures"]["RESOURCE_EXHAUSTED"], "refusals not counted in /metrics"
PY
kill -TERM "$PID"; wait "$PID" || fail "server exit code after overload"; PID=""
echo "e2e overload: all checks passed"
