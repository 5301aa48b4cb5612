#!/usr/bin/env bash
# Recorded purchases back into training (the retrain job's first steps): a
# server records purchases of a customer that customers.csv does not have
# (RocksDB event store), `hmrec_events export` writes them in the
# transactions layout, `hmrec_trainer --extra_transactions` and
# `hmrec_index_builder --extra_transactions` build a bundle from the base data
# plus the export, and the server on that bundle knows the new customer
# (a personalised list, not the fallback) without any recorded event.
#
#   tests/e2e/retrain_test.sh BUILD_DIR SOURCE_DIR
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
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
NEWC=$(printf 'e%.0s' $(seq 1 64))
grep -q "^$NEWC," "$WORK/data/customers.csv" && fail "the new customer is in customers.csv"

start_server "$WORK/server.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current" --events rocksdb --events_path "$WORK/events"
PIDS+=("$PID")
/usr/bin/python3 - "$WORK/py" "127.0.0.1:$PORT" "$HTTP" "$NEWC" "$WORK/data/articles.csv" << 'PYEOF' || fail "recording"
import csv, json, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import grpc, recommender_pb2 as pb, recommender_pb2_grpc as rpc
target, http, customer, articles = sys.argv[2:6]
day = json.load(urllib.request.urlopen(http + "/v1/bundle"))["features_as_of"]
ids = [r["article_id"] for r in csv.DictReader(open(articles))][:5]
stub = rpc.RecommenderStub(grpc.insecure_channel(target))
events = [pb.PurchaseEvent(customer_id=customer, article_id=a, t_dat=day, price=0.03, sales_channel_id=2,
                           event_id=f"retrain-{i}") for i, a in enumerate(ids)]
r = stub.RecordPurchases(pb.RecordPurchasesRequest(events=events), timeout=10)
assert r.recorded == 5, r
r = stub.RecordPurchases(pb.RecordPurchasesRequest(events=events[:2]), timeout=10)  # a retry
assert r.duplicates == 2, r
PYEOF
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"

# The embedded store is exported with its server stopped.
"$BUILD/events/hmrec_events" export --backend rocksdb --path "$WORK/events" --out "$WORK/extra.csv" \
  2> "$WORK/export.log" || { cat "$WORK/export.log" >&2; fail "export"; }
grep -q "wrote 5 purchases of 1 customers" "$WORK/export.log" || fail "export report: $(cat "$WORK/export.log")"
[[ $(head -1 "$WORK/extra.csv") == "t_dat,customer_id,article_id,price,sales_channel_id" ]] || fail "export header"
[[ $(grep -c ",$NEWC," "$WORK/extra.csv") == 5 ]] || fail "export rows: $(cat "$WORK/extra.csv")"

"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/data" \
  --extra_transactions "$WORK/extra.csv" --work_dir "$WORK/train2" --bundles "$WORK/bundles" --version v2 \
  --epochs 1 > /dev/null 2> "$WORK/train2.log" || { cat "$WORK/train2.log" >&2; fail "retrain"; }
grep -q "5 more transactions, 1 customers not in customers.csv added" "$WORK/train2.log" \
  || fail "trainer report: $(grep extra "$WORK/train2.log")"
"$BUILD/index_builder/hmrec_index_builder" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" \
  --data "$WORK/data" --extra_transactions "$WORK/extra.csv" --quiet 2> "$WORK/ib2.log" \
  || { cat "$WORK/ib2.log" >&2; fail "index builder on the retrained bundle"; }

# A fresh server with no events: the bundle alone knows the customer.
start_server "$WORK/server2.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current" --events off
PIDS+=("$PID")
curl -sf -X POST --data "{\"customer_ids\": [\"$NEWC\"], \"k\": 12}" "$HTTP/v1/recommend" > "$WORK/new.json" \
  || fail "Recommend for the new customer"
/usr/bin/python3 - "$WORK/new.json" "$WORK/data/customers.csv" "$HTTP" << 'PYEOF' || fail "the retrained bundle"
import json, sys, urllib.request
r = json.load(open(sys.argv[1]))["results"][0]
assert len(r["article_ids"]) == 12 and not r.get("fallback"), r
customers = sum(1 for _ in open(sys.argv[2])) - 1
b = json.load(urllib.request.urlopen(sys.argv[3] + "/v1/bundle"))
assert b["version"] == "v2" and int(b["num_customers"]) == customers + 1, b
print(f"the retrained bundle v2 knows the customer seen only in recorded purchases ({customers + 1} customers)")
PYEOF
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"
