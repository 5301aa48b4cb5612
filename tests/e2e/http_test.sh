#!/usr/bin/env bash
# The HTTP/JSON API of the real hmrec_server on a tiny bundle: curl and
# Python urllib against it, compared with gRPC answers for the same ids
# (tests/e2e/http_test.py); the method label "http" in /metrics; a clean
# exit on SIGTERM. Then all of it again over HTTPS (and gRPC over TLS) with
# an API key.
#
#   tests/e2e/http_test.sh BUILD_DIR SOURCE_DIR
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
start_server "$WORK/server.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current"
PIDS+=("$PID")
[[ -n "$HTTP" ]] || fail "no HTTP API line: $(cat "$WORK/server.log")"
IDS=$(sed -n '2,4p' "$WORK/data/customers.csv" | cut -d, -f1)

# curl: one customer, and the error body of a bad one.
ONE=$(echo "$IDS" | head -n1)
curl -sf -X POST -H 'Content-Type: application/json' --data "{\"customer_ids\": [\"$ONE\"], \"k\": 5}" \
  "$HTTP/v1/recommend" > "$WORK/one.json" || fail "curl POST /v1/recommend"
/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]; assert len(r["article_ids"]) == 5, r' \
  "$WORK/one.json" || fail "curl answer: $(cat "$WORK/one.json")"
CODE=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' -X POST --data '{"customer_ids": ["nope"]}' "$HTTP/v1/recommend")
[[ "$CODE" == 400 ]] || fail "a bad id got HTTP $CODE"
grep -q "customer_ids\[0\]" "$WORK/bad.json" || fail "the error does not name the field: $(cat "$WORK/bad.json")"

# Python urllib against grpcio, the same ids.
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
# shellcheck disable=SC2086
/usr/bin/python3 "$SRC/tests/e2e/http_test.py" "$WORK/py" "127.0.0.1:$PORT" "$HTTP" $IDS || fail "HTTP vs gRPC"

# The HTTP calls are in the metrics under their own method label.
# (Saved first: `curl | grep -q` fails under pipefail when grep stops reading early.)
curl -sf "$MURL" > "$WORK/metrics.txt" || fail "cannot scrape $MURL"
grep -q 'hmrec_request_duration_seconds_count{arm="main",caller="anonymous",code="OK",method="http"}' "$WORK/metrics.txt" \
  || fail "no method=\"http\" series in /metrics"
grep -q 'hmrec_request_duration_seconds_count{arm="none",caller="anonymous",code="INVALID_ARGUMENT",method="http"}' "$WORK/metrics.txt" \
  || fail "refused HTTP calls not counted: $(grep 'method="http"' "$WORK/metrics.txt")"

kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"

# The same over HTTPS (and gRPC over TLS) with API keys.
C="$WORK/certs"
make_certs "$C"
make_key "$WORK/keys" web recommend
cp "$SRC/configs/server.pbtxt" "$WORK/https.pbtxt"
cat >> "$WORK/https.pbtxt" << EOF
auth { keys_file: "$WORK/keys/keys" }
tls { cert_file: "$C/server.pem" key_file: "$C/server.key" }
EOF
start_server "$WORK/https.log" --config "$WORK/https.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current"
PIDS+=("$PID")
[[ "$HTTP" == https://* ]] || fail "not HTTPS: $HTTP"
# shellcheck disable=SC2086
HMREC_TEST_CA="$C/test-ca.pem" HMREC_API_KEY=$(cat "$WORK/keys/web") /usr/bin/python3 "$SRC/tests/e2e/http_test.py" \
  "$WORK/py" "127.0.0.1:$PORT" "$HTTP" $IDS || fail "HTTPS vs gRPC over TLS, with a key"
curl -sf --cacert "$C/test-ca.pem" "$MURL" > "$WORK/metrics_tls.txt" || fail "cannot scrape $MURL"
grep -q 'hmrec_request_duration_seconds_count{arm="main",caller="web",code="OK",method="http"}' "$WORK/metrics_tls.txt" \
  || fail "HTTPS calls not counted under their caller"
kill -TERM "$PID"
wait "$PID" || fail "HTTPS server exit code after SIGTERM"
echo "e2e http: ok"
