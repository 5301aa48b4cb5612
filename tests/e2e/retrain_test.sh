#!/usr/bin/env bash
# Recorded purchases back into training (the retrain job's first steps): a
# server records purchases of a customer that customers.csv does not have
# (RocksDB event store), `hmrec_events export` writes them in the
# transactions layout, `hmrec_trainer --extra_transactions` and
# `hmrec_index_builder --extra_transactions` build a bundle from the base data
# plus the export, and the server on that bundle knows the new customer
# (a personalised list, not the fallback) without any recorded event.
# Erasure on the same path: a customer erased through EraseCustomer
# (hmrec_client --erase) is served the fallback at once, their purchases
# are deleted and no longer recorded, the export leaves them out,
# `hmrec_events erasures` lists them, and the bundle retrained with
# --erasures does not hold them. Then the nightly job's script
# (hmrec_retrain: export -> split -> train -> build -> gate) twice on a new
# bundles directory: the first bundle is judged alone and promoted, the
# second gated against it on held-out days neither saw.
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
# The customer who asks to be forgotten: one with purchases in the data.
GONE=$(sed -n 2p "$WORK/data/transactions_train.csv" | cut -d, -f2)
NOBODY=$(printf 'd%.0s' $(seq 1 64))  # an id no file holds
printf 'customer_id\n%s\n%s\n' "$GONE" "$NOBODY" > "$WORK/erase.csv"

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
/usr/bin/python3 - "$WORK/py" "127.0.0.1:$PORT" "$HTTP" "$GONE" "$WORK/data/articles.csv" << 'PYEOF' \
  || fail "before the erasure"
import csv, json, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import grpc, recommender_pb2 as pb, recommender_pb2_grpc as rpc
target, http, customer, articles = sys.argv[2:6]
day = json.load(urllib.request.urlopen(http + "/v1/bundle"))["features_as_of"]
ids = [r["article_id"] for r in csv.DictReader(open(articles))][5:8]
stub = rpc.RecommenderStub(grpc.insecure_channel(target))
events = [pb.PurchaseEvent(customer_id=customer, article_id=a, t_dat=day, price=0.03, sales_channel_id=1,
                           event_id=f"gone-{i}") for i, a in enumerate(ids)]
assert stub.RecordPurchases(pb.RecordPurchasesRequest(events=events), timeout=10).recorded == 3
r = stub.Recommend(pb.RecommendRequest(customer_ids=[customer], k=12), timeout=10).results[0]
assert not r.fallback and r.events_applied == 3, r
# A malformed id: INVALID_ARGUMENT naming it, nothing erased.
try:
    stub.EraseCustomer(pb.EraseCustomerRequest(customer_ids=[customer, "not-an-id"]), timeout=10)
    raise SystemExit("a malformed id was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "customer_ids[1]" in e.details(), e
assert not stub.Recommend(pb.RecommendRequest(customer_ids=[customer], k=12), timeout=10).results[0].fallback
PYEOF
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --erase "$WORK/erase.csv" 2> "$WORK/erase.log" \
  || { cat "$WORK/erase.log" >&2; fail "hmrec_client --erase"; }
grep -q "2 customers of .*: 2 erased, 0 erased before; 3 recorded purchases deleted" "$WORK/erase.log" \
  || fail "erase report: $(cat "$WORK/erase.log")"
/usr/bin/python3 - "$WORK/py" "127.0.0.1:$PORT" "$HTTP" "$GONE" "$WORK/data/articles.csv" << 'PYEOF' \
  || fail "after the erasure"
import csv, json, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import grpc, recommender_pb2 as pb, recommender_pb2_grpc as rpc
target, http, customer, articles = sys.argv[2:6]
day = json.load(urllib.request.urlopen(http + "/v1/bundle"))["features_as_of"]
stub = rpc.RecommenderStub(grpc.insecure_channel(target))
# Served as an unknown customer at once, over both edges, with its id as sent.
r = stub.Recommend(pb.RecommendRequest(customer_ids=[customer], k=12), timeout=10).results[0]
assert r.fallback and r.customer_id == customer and len(r.article_ids) == 12, r
body = json.dumps({"customer_ids": [customer], "k": 12}).encode()
h = json.load(urllib.request.urlopen(urllib.request.Request(http + "/v1/recommend", data=body)))["results"][0]
assert h["fallback"], h
# Their next purchase is acknowledged, not kept; erasing again is a no-op.
e = pb.PurchaseEvent(customer_id=customer, article_id=csv.DictReader(open(articles)).__next__()["article_id"],
                     t_dat=day, price=0.03, sales_channel_id=1, event_id="gone-after")
r = stub.RecordPurchases(pb.RecordPurchasesRequest(events=[e]), timeout=10)
assert r.erased == 1 and r.recorded == 0, r
r = stub.EraseCustomer(pb.EraseCustomerRequest(customer_ids=[customer]), timeout=10)
assert r.erased == 0 and r.already_erased == 1 and r.events_deleted == 0, r
PYEOF
grep -q "$GONE" "$WORK/server.log" && fail "the erased customer's id is in the server's log"
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"

# The embedded store is exported with its server stopped.
"$BUILD/events/hmrec_events" export --backend rocksdb --path "$WORK/events" --out "$WORK/extra.csv" \
  2> "$WORK/export.log" || { cat "$WORK/export.log" >&2; fail "export"; }
grep -q "wrote 5 purchases of 1 customers.*, 0 erased customers left out" "$WORK/export.log" \
  || fail "export report: $(cat "$WORK/export.log")"
grep -q "$GONE" "$WORK/extra.csv" && fail "the erased customer's purchases were exported"
"$BUILD/events/hmrec_events" erasures --backend rocksdb --path "$WORK/events" --out "$WORK/erasures.csv" \
  2> "$WORK/erasures.log" || { cat "$WORK/erasures.log" >&2; fail "hmrec_events erasures"; }
[[ $(cat "$WORK/erasures.csv") == "$(echo customer_id; printf '%s\n%s\n' "$GONE" "$NOBODY" | LC_ALL=C sort)" ]] \
  || fail "erasure list: $(cat "$WORK/erasures.csv")"
[[ $(head -1 "$WORK/extra.csv") == "t_dat,customer_id,article_id,price,sales_channel_id" ]] || fail "export header"
[[ $(grep -c ",$NEWC," "$WORK/extra.csv") == 5 ]] || fail "export rows: $(cat "$WORK/extra.csv")"

"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/data" \
  --extra_transactions "$WORK/extra.csv" --erasures "$WORK/erasures.csv" --work_dir "$WORK/train2" --bundles "$WORK/bundles" --version v2 \
  --epochs 1 > /dev/null 2> "$WORK/train2.log" || { cat "$WORK/train2.log" >&2; fail "retrain"; }
grep -q "5 more transactions, 1 customers not in customers.csv added" "$WORK/train2.log" \
  || fail "trainer report: $(grep extra "$WORK/train2.log")"
grep -q "1 customers erased (2 listed), [1-9][0-9]* of their transactions left out" "$WORK/train2.log" \
  || fail "trainer erasure report: $(grep erased "$WORK/train2.log")"
"$BUILD/index_builder/hmrec_index_builder" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" \
  --data "$WORK/data" --extra_transactions "$WORK/extra.csv" --erasures "$WORK/erasures.csv" --quiet 2> "$WORK/ib2.log" \
  || { cat "$WORK/ib2.log" >&2; fail "index builder on the retrained bundle"; }

# A fresh server with no events: the bundle alone knows the customer.
start_server "$WORK/server2.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current" --events off
PIDS+=("$PID")
curl -sf -X POST --data "{\"customer_ids\": [\"$NEWC\"], \"k\": 12}" "$HTTP/v1/recommend" > "$WORK/new.json" \
  || fail "Recommend for the new customer"
curl -sf -X POST --data "{\"customer_ids\": [\"$GONE\"], \"k\": 12}" "$HTTP/v1/recommend" > "$WORK/gone.json" \
  || fail "Recommend for the erased customer"
/usr/bin/python3 - "$WORK/new.json" "$WORK/data/customers.csv" "$HTTP" "$WORK/gone.json" << 'PYEOF' \
  || fail "the retrained bundle"
import json, sys, urllib.request
r = json.load(open(sys.argv[1]))["results"][0]
assert len(r["article_ids"]) == 12 and not r.get("fallback"), r
gone = json.load(open(sys.argv[4]))["results"][0]
assert gone["fallback"], gone  # no erasure list here (events off): the bundle itself forgot them
customers = sum(1 for _ in open(sys.argv[2])) - 1
b = json.load(urllib.request.urlopen(sys.argv[3] + "/v1/bundle"))
assert b["version"] == "v2" and int(b["num_customers"]) == customers + 1 - 1, b
print(f"the retrained bundle v2 knows the customer seen only in recorded purchases and not the erased one "
      f"({customers} customers)")
PYEOF
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"

# The nightly job, as the CronJob runs it (one rank), on the same store.
NB="$WORK/nightly-bundles"
nightly() {  # nightly RUN MAX_DROP
  "$SRC/scripts/hmrec_retrain.sh" --data "$WORK/data" --work "$WORK/nightly" --bundles "$NB" \
    --events_backend rocksdb --events_path "$WORK/events" --holdout_days 7 --max_drop "$2" --run "$1" \
    --bin "$BUILD" -- --config "$SRC/tests/data/trainer_tiny.pbtxt" --epochs 1 > "$WORK/nightly-$1.log" 2>&1 \
    || { cat "$WORK/nightly-$1.log" >&2; fail "hmrec_retrain $1"; }
}
nightly n1 0.02
grep -q "gate: nightly-n1 passes (MAP@12 [0-9.]* on [0-9]* held-out customers; the first bundle); current -> nightly-n1" \
  "$WORK/nightly-n1.log" || fail "the first nightly bundle: $(grep gate: "$WORK/nightly-n1.log")"
[[ $(readlink "$NB/current") == nightly-n1 ]] || fail "current after the first night: $(readlink "$NB/current")"
grep -q "1 customers erased (2 listed)" "$WORK/nightly-n1.log" || fail "the nightly training kept the erased customer"
grep -q "$GONE" "$WORK/nightly/n1/split/truth.csv" "$WORK/nightly/n1/split/train/"*transactions*.csv \
  && fail "the erased customer's rows are in the nightly split"
grep -q "$NEWC" "$WORK/nightly/n1/split/train/extra_transactions.csv" "$WORK/nightly/n1/split/truth.csv" \
  || fail "the recorded purchases are not in the nightly split"
nightly n2 0.5
/usr/bin/python3 - "$WORK/nightly/n2/gate.json" << 'PYEOF' || fail "the second night's gate"
import json, sys
g = json.load(open(sys.argv[1]))
assert g["passed"] and g["promoted"] and g["current"] == "nightly-n1" and g["candidate"] == "nightly-n2", g
assert g["current_map_at_12"] > 0 and g["candidate_map_at_12"] > 0, g
unseen = [c for c in g["checks"] if c["name"].startswith("unseen days")]
assert len(unseen) == 2 and all(c["passed"] for c in unseen), unseen
print(f"nightly: n2 {g['candidate_map_at_12']:.4f} vs n1 {g['current_map_at_12']:.4f} on held-out days neither saw")
PYEOF
[[ $(readlink "$NB/current") == nightly-n2 ]] || fail "current after the second night: $(readlink "$NB/current")"
