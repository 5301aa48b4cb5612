#!/usr/bin/env bash
# TLS and mutual TLS end to end, with certificates made by openssl here: a
# server requiring client certificates answers a client holding one signed by
# its CA, and refuses a plaintext client, a TLS client without a certificate
# and one whose certificate another CA signed; a TLS-only server answers a
# TLS client and refuses plaintext; bad TLS settings stop the server with a
# message naming the setting.
set -euo pipefail
BUILD=${1:?usage: tls_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: tls_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
C="$WORK/certs"
mkdir -p "$C"

# A CA, a server certificate for 127.0.0.1/localhost, a client certificate,
# and a client certificate from an unrelated CA.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2> /dev/null; }
ca() {  # ca NAME
  key "$C/$1.key"
  openssl req -x509 -new -key "$C/$1.key" -out "$C/$1.pem" -days 2 -subj "/CN=$1" 2> /dev/null
}
leaf() {  # leaf NAME CA EXTENSIONS
  key "$C/$1.key"
  openssl req -new -key "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$1" 2> /dev/null
  printf '%s\n' "$3" > "$C/$1.ext"
  openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial -out "$C/$1.pem" \
    -days 2 -extfile "$C/$1.ext" 2> /dev/null
}
ca test-ca
ca rogue-ca
leaf server test-ca "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client test-ca "extendedKeyUsage=clientAuth"
leaf rogue rogue-ca "extendedKeyUsage=clientAuth"

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
# The HTTP/JSON port cannot serve TLS (Debian 12's civetweb with OpenSSL 3
# calls a null SSL_get_peer_certificate): with both, a clear refusal at start
# instead of a crash on the first HTTPS request.
if "$BUILD/server/hmrec_server" --config "$WORK/tls.pbtxt" --listen 127.0.0.1:0 --metrics off --http 127.0.0.1:0 \
     --bundle "$WORK/bundles/current" 2> "$WORK/bad3.log"; then fail "HTTP with TLS started"; fi
grep -q "http_address with tls { }: the HTTP/JSON port cannot serve TLS" "$WORK/bad3.log" \
  || fail "unclear error: $(cat "$WORK/bad3.log")"
echo "e2e TLS: all checks passed"
