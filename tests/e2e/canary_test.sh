#!/usr/bin/env bash
# Canary traffic with the real hmrec_server on 127.0.0.1: two tiny bundles
# (v1 current, v2 the canary); a canary percent outside 0..100 and a canary
# path equal to the main one refused at start; then two replicas with
# canary { percent: 30 }: 25-35% of 2,000 customers get v2, each customer the
# same version on every call and on both replicas, every result naming its
# version and arm, SimilarArticles and the inspector following the
# customer's arm, the metrics labelled by arm; the canary swapped under load
# (0 failed calls); the impression log and `hmrec_evaluate arms` comparing
# the arms on purchases recorded afterwards (tests/e2e/canary_test.py); the
# other replica's impressions through a Redis stream (hmrec_events impressions).
#
#   tests/e2e/canary_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_tiny_bundle "$BUILD" "$SRC" "$WORK"
"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/data" \
  --work_dir "$WORK/train2" --bundles "$WORK/bundles" --version v2 --epochs 1 > /dev/null 2> "$WORK/train2.log" \
  || { cat "$WORK/train2.log" >&2; fail "trainer v2"; }
"$BUILD/index_builder/hmrec_index_builder" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" \
  --data "$WORK/data" --make_current=false --quiet 2> "$WORK/ib2.log" || { cat "$WORK/ib2.log" >&2; fail "index v2"; }
ln -s v2 "$WORK/bundles/canary"
[[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "current is not v1"

config() {  # config FILE EXTRA...: the repository's server config with EXTRA lines
  local out=$1
  shift
  sed 's/^bundle_watch_ms: .*/bundle_watch_ms: 200/' "$SRC/configs/server.pbtxt" > "$out"
  printf '%s\n' "$@" >> "$out"
}
refused() {  # refused NAME WHAT CONFIG-LINES...: the server does not start, naming WHAT
  local name=$1 what=$2
  shift 2
  config "$WORK/$name.pbtxt" "$@"
  if timeout 60 "$BUILD/server/hmrec_server" --config "$WORK/$name.pbtxt" --listen 127.0.0.1:0 --metrics off \
    --bundle "$WORK/bundles/current" --events off 2> "$WORK/$name.log"; then
    fail "$name: the server started"
  fi
  grep -q "$what" "$WORK/$name.log" || fail "$name: $(cat "$WORK/$name.log")"
}
refused percent "canary.percent = 150 is outside 0..100" \
  "canary { bundle_path: \"$WORK/bundles/canary\" percent: 150 }"
refused same_path "is bundle_path: a canary is a second bundle" \
  "canary { bundle_path: \"$WORK/bundles/current\" percent: 30 }"
refused sample "impressions.sample_percent = 120" \
  "impressions { path: \"$WORK/x.jsonl\" sample_percent: 120 }"

config "$WORK/a.pbtxt" "canary { bundle_path: \"$WORK/bundles/canary\" percent: 30 }" \
  "impressions { path: \"$WORK/impressions.jsonl\" }"
# Replica b logs its impressions to a Redis stream (a real redis-server).
[[ -x /usr/bin/redis-server ]] || fail "redis-server is missing: deploy/install_deps.sh installs it"
RPORT=$(free_port)
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$WORK/redis" --save "" --daemonize no \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 1 50); do [[ $(redis-cli -p "$RPORT" ping 2> /dev/null) == PONG ]] && break; sleep 0.1; done
config "$WORK/b.pbtxt" "canary { bundle_path: \"$WORK/bundles/canary\" percent: 30 }" \
  "impressions { redis_stream: \"hmrec:impressions\" redis_address: \"127.0.0.1:$RPORT\" }"
start_server "$WORK/a.log" --config "$WORK/a.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --http 127.0.0.1:0 \
  --bundle "$WORK/bundles/current" --events rocksdb --events_path "$WORK/events"
PIDS+=("$PID")
A_PORT=$PORT A_HTTP=$HTTP A_METRICS=$MURL
start_server "$WORK/b.log" --config "$WORK/b.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --bundle "$WORK/bundles/current" --events off
PIDS+=("$PID")
B_PORT=$PORT
grep -q "canary bundle v2 serves 30.00% of the customers (main: v1)" "$WORK/a.log" || fail "start line: $(cat "$WORK/a.log")"
[[ $(stat -c %a "$WORK/impressions.jsonl") == 600 ]] || fail "the impression log is not mode 600"

mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
/usr/bin/python3 "$SRC/tests/e2e/canary_test.py" "$WORK" "$BUILD" "127.0.0.1:$A_PORT" "127.0.0.1:$B_PORT" "$A_HTTP" \
  "$A_METRICS" || fail "canary_test.py"
grep -q "now serving canary bundle v1 (was v2)" "$WORK/a.log" || fail "no canary swap line: $(grep canary "$WORK/a.log")"
# Replica b's impressions, collected from the stream: one line per customer
# it answered, each naming the arm that did.
"$BUILD/events/hmrec_events" impressions --stream hmrec:impressions --redis_address "127.0.0.1:$RPORT" \
  --out "$WORK/b-impressions.jsonl" 2> "$WORK/b-impressions.log" || { cat "$WORK/b-impressions.log" >&2; fail "impressions"; }
/usr/bin/python3 - "$WORK/b-impressions.jsonl" << 'PYEOF' || fail "the Redis stream's impressions"
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1])]
assert len(lines) == 2000, len(lines)
arms = {(x["arm"], x["bundle_version"]) for x in lines}
assert arms == {("main", "v1"), ("canary", "v2")}, arms
print(f"replica b: {len(lines)} impressions in the Redis stream")
PYEOF
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "server exit code after SIGTERM"; done
PIDS=()
