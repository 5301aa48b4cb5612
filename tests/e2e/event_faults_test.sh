#!/usr/bin/env bash
# The shared event store failing under the real hmrec_server (a real
# redis-server on 127.0.0.1):
#  1. Redis hung (SIGSTOP: connections accepted, never answered) under 64
#     single-id clients: no Recommend call fails, the breaker opens
#     (hmrec_event_store_up 0), RecordPurchases is UNAVAILABLE at once naming
#     the store; after SIGCONT the background probe closes the breaker and a
#     purchase is recorded and applied.
#  2. A server started while Redis is down serves, and records once Redis is
#     up (no restart).
#
#   tests/e2e/event_faults_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
WORK=$(mktemp -d)
PIDS=()
REDIS_PID=""
cleanup() {
  [[ -n "$REDIS_PID" ]] && kill -CONT "$REDIS_PID" 2> /dev/null && kill -9 "$REDIS_PID" 2> /dev/null
  for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -x /usr/bin/redis-server ]] || fail "redis-server is missing: deploy/install_deps.sh installs it"

make_tiny_bundle "$BUILD" "$SRC" "$WORK"
RPORT=$(free_port)
start_redis() {
  mkdir -p "$WORK/redis"
  redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$WORK/redis" --appendonly yes --appendfsync always \
    --save "" --daemonize no --logfile "$WORK/redis.log" &
  REDIS_PID=$!
  # PONG, not just a reply: a restarted Redis answers -LOADING while it reads its AOF
  for _ in $(seq 1 50); do [[ $(redis-cli -p "$RPORT" ping 2>/dev/null) == PONG ]] && return 0; sleep 0.1; done
  fail "redis-server did not start"
}
cp "$SRC/configs/server.pbtxt" "$WORK/server.pbtxt"
echo "events { backend: \"redis\" redis_address: \"127.0.0.1:$RPORT\" redis_probe_interval_ms: 200 }" \
  >> "$WORK/server.pbtxt"
# A purchase after the bundle's data, of a known customer and article.
CUSTOMER=$(sed -n 2p "$WORK/data/customers.csv" | cut -d, -f1)
ARTICLE=$(sed -n 2p "$WORK/data/articles.csv" | cut -d, -f1)
LAST=$(tail -n +2 "$WORK/data/transactions_train.csv" | cut -d, -f1 | sort | tail -1)
DAY=$(date -u -d "$LAST + 1 day" +%F)
event() {  # event ID_SUFFIX > csv
  printf 't_dat,customer_id,article_id,price,sales_channel_id\n%s,%s,%s,0.0%s,2\n' "$DAY" "$CUSTOMER" "$ARTICLE" "$1"
}
up_gauge() { curl -sf "$MURL" | awk '$1 == "hmrec_event_store_up" { print $2 }'; }
load() {  # load OUT.json: 64 single-id clients for 3 s
  "$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" \
    --ids_per_request 1 --concurrency 64 --duration_s 3 --warmup_s 0.5 > "$1" || true
}

# 1. Hung.
start_redis
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$WORK/bundles/current"
PIDS+=("$PID")
load "$WORK/healthy.json"
kill -STOP "$REDIS_PID"
load "$WORK/hung.json"
[[ $(up_gauge) == 1 ]] && fail "the breaker did not open while Redis hung"
event 1 > "$WORK/e1.csv"
START=$(date +%s%N)
if "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --record "$WORK/e1.csv" --max_attempts 1 --quiet \
  > /dev/null 2> "$WORK/record_hung.log"; then fail "a purchase was acknowledged while Redis hung"; fi
ELAPSED_MS=$((($(date +%s%N) - START) / 1000000))
grep -q "is not answering" "$WORK/record_hung.log" || fail "unclear refusal: $(cat "$WORK/record_hung.log")"
((ELAPSED_MS < 2000)) || fail "RecordPurchases took $ELAPSED_MS ms with the breaker open"
kill -CONT "$REDIS_PID"
for _ in $(seq 1 50); do [[ $(up_gauge) == 1 ]] && break; sleep 0.1; done
[[ $(up_gauge) == 1 ]] || fail "the breaker did not close after Redis came back"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --record "$WORK/e1.csv" --quiet > /dev/null \
  2> "$WORK/record_back.log" || fail "recording after Redis came back: $(cat "$WORK/record_back.log")"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" > "$WORK/one.txt" \
  || fail "Recommend after Redis came back"
grep -q "with 1 purchase(s) recorded since" "$WORK/one.txt" || fail "the recorded purchase is not applied: $(head -1 "$WORK/one.txt")"
/usr/bin/python3 - "$WORK/healthy.json" "$WORK/hung.json" << 'PY' || fail "Recommend failed while Redis hung"
import json, sys
healthy, hung = (json.load(open(f)) for f in sys.argv[1:3])
for name, r in (("healthy", healthy), ("hung", hung)):
    assert r["failed"] == 0 and r["requests"] > 0, (name, r)
print(f"event faults: Redis healthy p99 {healthy['p99_ms']:.1f} ms, hung p99 {hung['p99_ms']:.1f} ms "
      f"({hung['requests']} calls, 0 failed)")
PY
kill -TERM "$PID"
wait "$PID" || fail "exit code after SIGTERM"
PIDS=()

# 2. Started while Redis is down.
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2> /dev/null || true
REDIS_PID=""
start_server "$WORK/down.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$WORK/bundles/current"
PIDS+=("$PID")
grep -q "WARNING: event store redis 127.0.0.1:$RPORT" "$WORK/down.log" || fail "no warning: $(cat "$WORK/down.log")"
[[ $(up_gauge) == 0 ]] || fail "hmrec_event_store_up is not 0 with Redis down"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" > /dev/null \
  || fail "Recommend with Redis down at start"
start_redis
event 2 > "$WORK/e2.csv"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --record "$WORK/e2.csv" --quiet > /dev/null \
  2> "$WORK/record_late.log" || fail "no record once Redis is up: $(cat "$WORK/record_late.log")"
echo "e2e event faults: all checks passed"
