#!/usr/bin/env bash
# Who may call what, end to end, with the real hmrec_server on 127.0.0.1:
#  1. TLS + API keys: every HTTP route and RPC x {no key, wrong key, key
#     without the scope, key with it}, malformed authorization values, health
#     and metrics without a key (tests/e2e/auth_test.py); the audit lines of
#     a RecordPurchases and an EraseCustomer; no key and no purchased customer in the server's log.
#  2. Rotation under load: 64 clients calling with a key while the keys file
#     is replaced (a new key added, a broken file, SIGHUP): no failed call;
#     then the old key removed: refused, the new one served.
#  3. Mutual TLS: a client certificate's CN stands for a key (curl, Python,
#     hmrec_client over gRPC); no certificate or another CA's: refused.
#  4. Refused at start: a non-loopback address without keys (naming
#     allow_unauthenticated), a world-writable keys file, a bad one.
#
#   tests/e2e/auth_test.sh BUILD_DIR SOURCE_DIR
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
C="$WORK/certs"
K="$WORK/keys"
make_certs "$C"
make_key "$K" rec recommend
make_key "$K" rw record
make_key "$K" insp inspect
make_key "$K" all recommend,record,inspect
make_key "$K" spare recommend
make_key "$K" priv erase
echo "mesh recommend cn:batch-job" >> "$K/keys"
make_tiny_bundle "$BUILD" "$SRC" "$WORK"
CUSTOMER=$(sed -n 2p "$WORK/data/customers.csv" | cut -d, -f1)
ARTICLE=$(sed -n 2p "$WORK/data/articles.csv" | cut -d, -f1)
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"

# 1. TLS and keys on every port (client certificates asked for, not required).
cp "$SRC/configs/server.pbtxt" "$WORK/tls.pbtxt"
cat >> "$WORK/tls.pbtxt" << EOF
auth { keys_file: "$K/keys" }
tls { cert_file: "$C/server.pem" key_file: "$C/server.key" client_ca_file: "$C/test-ca.pem" }
EOF
start_server "$WORK/tls.log" --config "$WORK/tls.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --events_path "$WORK/events" --bundle "$WORK/bundles/current"
PIDS+=("$PID")
[[ "$HTTP" == https://* && "$MURL" == https://* ]] || fail "the HTTP and metrics ports do not say https: $HTTP $MURL"
HPORT=${HTTP##*:}
MPORT=$(echo "$MURL" | sed 's|.*:\([0-9]*\)/metrics|\1|')
/usr/bin/python3 "$SRC/tests/e2e/auth_test.py" "$WORK/py" "$C/test-ca.pem" "$PORT" "$HPORT" "$MPORT" "$K" \
  "$CUSTOMER" "$ARTICLE" || fail "the key x scope matrix"
# curl too: HTTPS with a key; plain HTTP to the TLS port gets nothing.
curl -sf --cacert "$C/test-ca.pem" -H "authorization: Bearer $(cat "$K/rec")" -X POST \
  --data "{\"customer_ids\": [\"$CUSTOMER\"], \"k\": 3}" "$HTTP/v1/recommend" > "$WORK/curl.json" \
  || fail "curl over HTTPS with a key"
grep -q '"article_ids"' "$WORK/curl.json" || fail "curl answer: $(cat "$WORK/curl.json")"
if curl -sf -m 5 "http://127.0.0.1:$HPORT/healthz" > /dev/null 2>&1; then fail "plain HTTP served on the TLS port"; fi
# Optional mutual TLS: a verified certificate's CN (batch-job -> "mesh") stands
# for a key on both ports; without one, a key is needed.
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --tls_ca "$C/test-ca.pem" \
  --tls_cert "$C/client.pem" --tls_key "$C/client.key" > /dev/null || fail "optional mTLS: the CN did not stand for a key"
if "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --tls_ca "$C/test-ca.pem" \
  > /dev/null 2>&1; then fail "optional mTLS: served without a certificate or a key"; fi
ANSWER=$(curl -sf --cacert "$C/test-ca.pem" --cert "$C/client.pem" --key "$C/client.key" -X POST \
  --data "{\"customer_ids\": [\"$CUSTOMER\"], \"k\": 3}" "$HTTP/v1/recommend") || fail "optional mTLS over HTTPS"
[[ "$ANSWER" == *'"article_ids"'* ]] || fail "optional mTLS over HTTPS: $ANSWER"
# The audit line of the RecordPurchases auth_test.py made with the record key.
grep -q '^audit: {"call":"EraseCustomer","caller":"priv","code":"OK","customers":1,"erased":1,"already_erased":0,"events_deleted":0}$' \
  "$WORK/tls.log" || fail "no audit line for the EraseCustomer: $(grep EraseCustomer "$WORK/tls.log")"
grep -q '^audit: {"call":"RecordPurchases","caller":"rw","code":"OK","events":1,"recorded":1,"duplicates":0,"expired":0,"erased":0,"refused":0,"first_event_id":"auth-test-1"}$' \
  "$WORK/tls.log" || fail "no audit line: $(grep audit "$WORK/tls.log" || true)"
# Nothing secret in the log: no key, no customer whose purchase was recorded.
for name in rec rw insp all spare; do
  if grep -qF "$(cat "$K/$name")" "$WORK/tls.log"; then fail "the key of $name is in the server's log"; fi
done
if grep -qF "$CUSTOMER" "$WORK/tls.log"; then fail "a customer id is in the server's log"; fi
kill -TERM "$PID"
wait "$PID" || fail "exit code after SIGTERM"
PIDS=()

# 2. Rotation under load (plaintext on loopback, keys polled every 200 ms).
R="$WORK/rot"
make_key "$R" old recommend
cp "$SRC/configs/server.pbtxt" "$WORK/rot.pbtxt"
echo "auth { keys_file: \"$R/keys\" reload_ms: 200 }" >> "$WORK/rot.pbtxt"
start_server "$WORK/rot.log" --config "$WORK/rot.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --events off \
  --bundle "$WORK/bundles/current"
PIDS+=("$PID")
"$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" \
  --api_key_file "$R/old" --concurrency 64 --ids_per_request 1 --duration_s 8 --warmup_s 0 \
  > "$WORK/load.json" 2> "$WORK/load.err" &
LOAD=$!
sleep 2
cp "$R/keys" "$WORK/keys.before"
make_key "$WORK/rot2" new recommend
cat "$WORK/keys.before" "$WORK/rot2/keys" > "$R/keys.next" && chmod 600 "$R/keys.next" && mv "$R/keys.next" "$R/keys"
sleep 1.5
printf 'old recommend sha256:not-hex\n' > "$R/keys.next" && chmod 600 "$R/keys.next" && mv "$R/keys.next" "$R/keys"
sleep 1
kill -HUP "$PID"
sleep 1
cat "$WORK/keys.before" "$WORK/rot2/keys" > "$R/keys.next" && chmod 600 "$R/keys.next" && mv "$R/keys.next" "$R/keys"
wait "$LOAD" || fail "load with a valid key failed during rotation: $(cat "$WORK/load.json" "$WORK/load.err")"
/usr/bin/python3 - "$WORK/load.json" << 'PY' || fail "calls failed during rotation"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["failed"] == 0 and r["requests"] > 100, r
print(f"rotation: {r['requests']} calls from 64 clients, 0 failed, p99 {r['p99_ms']:.1f} ms")
PY
grep -q "auth: refused the keys file: $R/keys:1: the credential of client 'old' must be sha256: and 64 hex" \
  "$WORK/rot.log" || fail "the broken keys file was not refused by name: $(grep auth: "$WORK/rot.log")"
if grep -q 'not-hex' "$WORK/rot.log"; then fail "the refused credential was echoed"; fi
# Now the old key goes.
cp "$WORK/rot2/keys" "$R/keys.next" && chmod 600 "$R/keys.next" && mv "$R/keys.next" "$R/keys"
for _ in $(seq 1 50); do
  if ! "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --api_key_file "$R/old" \
    > /dev/null 2> "$WORK/old.err"; then break; fi
  sleep 0.1
done
grep -q "Recommend failed: 16 unknown key" "$WORK/old.err" || fail "the removed key still works: $(cat "$WORK/old.err")"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --api_key_file "$WORK/rot2/new" \
  > /dev/null || fail "the new key is refused"
HMREC_API_KEY=$(cat "$WORK/rot2/new") "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" \
  --customer-id "$CUSTOMER" > /dev/null || fail "HMREC_API_KEY is not used"
curl -sf "$MURL" > "$WORK/rot_metrics.txt"
grep -q 'hmrec_auth_keys_reloads_total{result="refused"} [1-9]' "$WORK/rot_metrics.txt" || fail "no refused reload counted"
grep -q 'hmrec_auth_keys 1$' "$WORK/rot_metrics.txt" || fail "keys in force: $(grep auth_keys "$WORK/rot_metrics.txt")"
kill -TERM "$PID"
wait "$PID" || fail "exit code after SIGTERM"
PIDS=()

# 3. Mutual TLS: the certificate's CN (batch-job -> client "mesh") is the
# credential on both ports.
cp "$SRC/configs/server.pbtxt" "$WORK/mtls.pbtxt"
cat >> "$WORK/mtls.pbtxt" << EOF
auth { keys_file: "$K/keys" }
tls { cert_file: "$C/server.pem" key_file: "$C/server.key" client_ca_file: "$C/test-ca.pem" require_client_cert: true }
EOF
start_server "$WORK/mtls.log" --config "$WORK/mtls.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --events off --bundle "$WORK/bundles/current"
PIDS+=("$PID")
CERT=(--cacert "$C/test-ca.pem" --cert "$C/client.pem" --key "$C/client.key")
BODY="{\"customer_ids\": [\"$CUSTOMER\"], \"k\": 3}"
ANSWER=$(curl -sf "${CERT[@]}" -X POST --data "$BODY" "$HTTP/v1/recommend") \
  || fail "mTLS: the certificate's CN did not stand for a key"
[[ "$ANSWER" == *'"article_ids"'* ]] || fail "mTLS: no article_ids: $ANSWER"
CODE=$(curl -s -o "$WORK/nocert.json" -w '%{http_code}' --cacert "$C/test-ca.pem" \
  -H "authorization: Bearer $(cat "$K/all")" -X POST --data "$BODY" "$HTTP/v1/recommend")
[[ "$CODE" == 401 ]] || fail "mTLS: no certificate got $CODE"
grep -q "client certificate" "$WORK/nocert.json" || fail "mTLS refusal: $(cat "$WORK/nocert.json")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/test-ca.pem" --cert "$C/rogue.pem" --key "$C/rogue.key" \
  -X POST --data "$BODY" "$HTTP/v1/recommend")
[[ "$CODE" == 401 ]] || fail "mTLS: another CA's certificate (same CN) got $CODE"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "${CERT[@]}" "$HTTP/v1/customers/$CUSTOMER")
[[ "$CODE" == 403 ]] || fail "mTLS: the CN's client lacks inspect, got $CODE"
/usr/bin/python3 - "$HTTP" "$C" "$CUSTOMER" "$WORK/py" "$PORT" << 'PY' || fail "mTLS from Python"
import json, ssl, sys, urllib.request
base, c, customer, stubs, port = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=c + "/test-ca.pem")
ctx.load_cert_chain(c + "/client.pem", c + "/client.key")
req = urllib.request.Request(base + "/v1/recommend", method="POST",
                             data=json.dumps({"customer_ids": [customer], "k": 4}).encode(),
                             headers={"Content-Type": "application/json"})
assert len(json.load(urllib.request.urlopen(req, context=ctx, timeout=30))["results"][0]["article_ids"]) == 4
sys.path.insert(0, stubs)
import grpc, recommender_pb2, recommender_pb2_grpc
creds = grpc.ssl_channel_credentials(open(c + "/test-ca.pem", "rb").read(), open(c + "/client.key", "rb").read(),
                                     open(c + "/client.pem", "rb").read())
stub = recommender_pb2_grpc.RecommenderStub(grpc.secure_channel("127.0.0.1:" + port, creds))
r = stub.Recommend(recommender_pb2.RecommendRequest(customer_ids=[customer], k=4), timeout=30)
assert len(r.results[0].article_ids) == 4
print("mTLS: the certificate's CN is the credential over HTTPS and gRPC (Python)")
PY
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --tls_ca "$C/test-ca.pem" \
  --tls_cert "$C/client.pem" --tls_key "$C/client.key" > /dev/null || fail "mTLS: hmrec_client by certificate"
if "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$CUSTOMER" --tls_ca "$C/test-ca.pem" \
  --api_key_file "$K/all" > /dev/null 2>&1; then fail "mTLS: gRPC without a certificate was served"; fi
kill -TERM "$PID"
wait "$PID" || fail "exit code after SIGTERM"
PIDS=()

# 4. Refused at start, naming why.
refused() {  # refused LOG WHAT ARGS...: the server must exit 1 with WHAT in its log
  local log=$1 what=$2
  shift 2
  if "$BUILD/server/hmrec_server" "$@" --metrics off --bundle "$WORK/bundles/current" 2> "$log"; then
    fail "started: $*"
  fi
  grep -qF "$what" "$log" || fail "unclear refusal (wanted '$what'): $(cat "$log")"
}
refused "$WORK/open.log" "allow_unauthenticated: true" --config "$SRC/configs/server.pbtxt" --listen 0.0.0.0:0
refused "$WORK/open_http.log" "http_address 0.0.0.0:0 is not a loopback address" \
  --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --http 0.0.0.0:0
cp "$K/keys" "$WORK/open.keys"
chmod 666 "$WORK/open.keys"
cp "$SRC/configs/server.pbtxt" "$WORK/ww.pbtxt"
echo "auth { keys_file: \"$WORK/open.keys\" }" >> "$WORK/ww.pbtxt"
refused "$WORK/ww.log" "$WORK/open.keys: every user may write it (mode 0666)" --config "$WORK/ww.pbtxt" \
  --listen 127.0.0.1:0
printf 'web recommend,admin sha256:%064d\n' 0 > "$WORK/bad.keys"
chmod 600 "$WORK/bad.keys"
cp "$SRC/configs/server.pbtxt" "$WORK/bad.pbtxt"
echo "auth { keys_file: \"$WORK/bad.keys\" }" >> "$WORK/bad.pbtxt"
refused "$WORK/bad.log" "$WORK/bad.keys:1: unknown scope 'admin' of client 'web'" --config "$WORK/bad.pbtxt" \
  --listen 127.0.0.1:0
echo "e2e auth: all checks passed"
