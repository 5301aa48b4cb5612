#!/usr/bin/env bash
# TLS and mutual TLS end to end, with certificates made by openssl here: a
# server requiring client certificates answers a client holding one signed by
# its CA, and refuses a plaintext client, a TLS client without a certificate
# and one whose certificate another CA signed; a TLS-only server answers a
# TLS client and refuses plaintext; the HTTP and metrics ports serve HTTPS
# with the same certificate (TLS 1.2+); bad TLS settings stop the server with
# a message naming the setting.
set -euo pipefail
BUILD=${1:?usage: tls_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: tls_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
C="$WORK/certs"

# A CA, a server certificate for 127.0.0.1/localhost, a client certificate,
# and a client certificate from an unrelated CA.
make_certs "$C"
make_tiny_bundle "$BUILD" "$SRC" "$WORK"

serve() {  # serve CONFIG LOG
  start_server "$2" --config "$1" --listen 127.0.0.1:0 --metrics off --bundle "$WORK/bundles/current"
}
ID=$(sed -n 2p "$WORK/data/customers.csv" | cut -d, -f1)
call() {  # call ARGS... : one Recommend through hmrec_client
  "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$ID" --deadline_ms 5000 "$@" \
    > "$WORK/call.out" 2> "$WORK/call.err"
}

# Mutual TLS.
cp "$SRC/configs/server.pbtxt" "$WORK/mtls.pbtxt"
cat >> "$WORK/mtls.pbtxt" <<EOF
tls { cert_file: "$C/server.pem" key_file: "$C/server.key" client_ca_file: "$C/test-ca.pem" require_client_cert: true }
EOF
serve "$WORK/mtls.pbtxt" "$WORK/mtls.log"
call --tls_ca "$C/test-ca.pem" --tls_cert "$C/client.pem" --tls_key "$C/client.key" \
  || fail "mTLS client with a valid certificate refused: $(cat "$WORK/call.err")"
grep -q "personalised" "$WORK/call.out" || fail "no recommendations over mTLS"
call --tls_ca "$C/test-ca.pem" --tls_cert "$C/client.pem" --tls_key "$C/client.key" --tls_server_name localhost \
  || fail "mTLS with the DNS name refused: $(cat "$WORK/call.err")"
if call; then fail "plaintext client accepted by an mTLS server"; fi
if call --tls_ca "$C/test-ca.pem"; then fail "client without a certificate accepted by an mTLS server"; fi
if call --tls_ca "$C/test-ca.pem" --tls_cert "$C/rogue.pem" --tls_key "$C/rogue.key"; then
  fail "client certificate from another CA accepted"
fi
if call --tls_ca "$C/rogue-ca.pem" --tls_cert "$C/client.pem" --tls_key "$C/client.key"; then
  fail "client trusted a server certificate its CA did not sign"
fi
kill -TERM "$PID"; wait "$PID" || fail "mTLS server exit code"; PID=""

# TLS without client certificates.
cp "$SRC/configs/server.pbtxt" "$WORK/tls.pbtxt"
echo "tls { cert_file: \"$C/server.pem\" key_file: \"$C/server.key\" }" >> "$WORK/tls.pbtxt"
serve "$WORK/tls.pbtxt" "$WORK/tls.log"
call --tls_ca "$C/test-ca.pem" || fail "TLS client refused: $(cat "$WORK/call.err")"
if call; then fail "plaintext client accepted by a TLS server"; fi
kill -TERM "$PID"; wait "$PID" || fail "TLS server exit code"; PID=""

# Bad settings: a clear error naming the setting, exit 1, before the bundle loads.
cp "$SRC/configs/server.pbtxt" "$WORK/bad.pbtxt"
echo "tls { cert_file: \"$C/nope.pem\" key_file: \"$C/server.key\" }" >> "$WORK/bad.pbtxt"
if "$BUILD/server/hmrec_server" --config "$WORK/bad.pbtxt" --listen 127.0.0.1:0 --metrics off \
     --bundle "$WORK/bundles/current" 2> "$WORK/bad.log"; then fail "started with a missing certificate"; fi
grep -q "tls.cert_file: cannot read $C/nope.pem" "$WORK/bad.log" || fail "unclear error: $(cat "$WORK/bad.log")"
cp "$SRC/configs/server.pbtxt" "$WORK/bad2.pbtxt"
echo "tls { cert_file: \"$C/server.pem\" key_file: \"$C/server.key\" require_client_cert: true }" >> "$WORK/bad2.pbtxt"
if "$BUILD/server/hmrec_server" --config "$WORK/bad2.pbtxt" --listen 127.0.0.1:0 --metrics off \
     --bundle "$WORK/bundles/current" 2> "$WORK/bad2.log"; then fail "mTLS without a client CA started"; fi
grep -q "require_client_cert needs tls.client_ca_file" "$WORK/bad2.log" || fail "unclear error: $(cat "$WORK/bad2.log")"
# The HTTP/JSON and metrics ports serve TLS with the same certificate:
# curl over HTTPS answers, plain HTTP to them gets nothing.
ID2=$(sed -n 3p "$WORK/data/customers.csv" | cut -d, -f1)
start_server "$WORK/https.log" --config "$WORK/tls.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current"
[[ "$HTTP" == https://127.0.0.1:* && "$MURL" == https://127.0.0.1:* ]] || fail "not https: $HTTP $MURL"
# (Answers are saved first: under pipefail `curl | grep -q` fails whenever
# grep stops reading before curl has written everything.)
ANSWER=$(curl -sf --cacert "$C/test-ca.pem" -X POST --data "{\"customer_ids\": [\"$ID2\"], \"k\": 3}" \
  "$HTTP/v1/recommend") || fail "HTTPS /v1/recommend"
[[ "$ANSWER" == *'"article_ids"'* ]] || fail "HTTPS /v1/recommend: $ANSWER"
SCRAPE=$(curl -sf --cacert "$C/test-ca.pem" "$MURL") || fail "HTTPS /metrics"
grep -q '^hmrec_bundle_info' <<< "$SCRAPE" || fail "HTTPS /metrics: no hmrec_bundle_info"
curl -sf --cacert "$C/test-ca.pem" "https://localhost:${HTTP##*:}/healthz" > /dev/null || fail "HTTPS by DNS name"
if curl -sf -m 5 "${HTTP/https/http}/healthz" > /dev/null 2>&1; then fail "plain HTTP served on the TLS port"; fi
if curl -sf -m 5 --cacert "$C/rogue-ca.pem" "$HTTP/healthz" > /dev/null 2>&1; then
  fail "curl trusted a server certificate its CA did not sign"
fi
if curl -sf -m 5 --cacert "$C/test-ca.pem" --tls-max 1.1 "$HTTP/healthz" > /dev/null 2>&1; then
  fail "TLS 1.1 accepted"
fi
kill -TERM "$PID"; wait "$PID" || fail "HTTPS server exit code"; PID=""
echo "e2e TLS: all checks passed"
