#!/usr/bin/env bash
# The inspector page in a real browser: Debian's chromium, headless, driven
# through chromedriver (python3-selenium), loads GET /inspect from the real
# hmrec_server on a tiny ranked bundle, submits customer ids, and the
# rendered recommendations, names and reasons must equal the API's answers
# (tests/e2e/inspector_test.py); then all of it again over HTTPS with API
# keys, the key typed into the page. Screenshots are kept in
# BUILD/tests/artifacts/inspector.png and inspector_https.png.
#
#   tests/e2e/inspector_test.sh BUILD_DIR SOURCE_DIR
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
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  [[ -x "$tool" ]] || fail "$tool is missing: deploy/install_deps.sh installs chromium and chromium-driver"
done

make_tiny_bundle "$BUILD" "$SRC" "$WORK"
# Merchandising rules in force: the page shows them and what they did.
printf 'diversity { max_per_product_type: 2 }\n' > "$WORK/rules.pbtxt"
cp "$SRC/configs/server.pbtxt" "$WORK/server.pbtxt"
printf 'rules_file: "%s"\n' "$WORK/rules.pbtxt" >> "$WORK/server.pbtxt"
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --events_path "$WORK/events" --bundle "$WORK/bundles/current"
PIDS+=("$PID")
[[ -n "$HTTP" ]] || fail "no HTTP API line: $(cat "$WORK/server.log")"

# The page is self-contained: nothing loaded from another origin.
curl -sf "$HTTP/inspect" > "$WORK/page.html" || fail "GET /inspect"
grep -q "<title>hmrec inspector</title>" "$WORK/page.html" || fail "not the inspector page"
if grep -Eq '(src|href)="(https?:)?//' "$WORK/page.html"; then fail "the page loads something from elsewhere"; fi

# A purchase recorded online after the bundle's data: the page must list it
# (marked) above the bundle's history.
# (awk, not "sort | head": head closing the pipe fails the script under pipefail)
read -r TOP ART < <(awk -F, 'NR > 1 { c[$2]++; a[$3]++ }
  END { for (k in c) if (c[k] > bc || (c[k] == bc && k < b)) { bc = c[k]; b = k }
        for (k in a) if (!ba || a[k] < ba || (a[k] == ba && k < r)) { ba = a[k]; r = k }
        print b, r }' "$WORK/data/transactions_train.csv")
printf 't_dat,customer_id,article_id,price,sales_channel_id\n2020-09-23,%s,%s,0.03,2\n' "$TOP" "$ART" \
  > "$WORK/event.csv"
GRPC=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
"$BUILD/client/hmrec_client" --server "127.0.0.1:$GRPC" --record "$WORK/event.csv" --quiet > /dev/null \
  2> "$WORK/record.log" || fail "recording the event: $(cat "$WORK/record.log")"

mkdir -p "$BUILD/tests/artifacts"
HOME="$WORK" /usr/bin/python3 "$SRC/tests/e2e/inspector_test.py" "$HTTP" \
  "$BUILD/tests/artifacts/inspector.png" "$WORK/chrome" "$TOP" "$ART" || fail "the rendered page does not match the API"
[[ -s "$BUILD/tests/artifacts/inspector.png" ]] || fail "no screenshot"
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"

# Again over HTTPS with API keys: the page asks for one.
C="$WORK/certs"
make_certs "$C"
make_key "$WORK/keys" ops recommend,inspect
make_key "$WORK/keys" pos record
cp "$SRC/configs/server.pbtxt" "$WORK/https.pbtxt"
cat >> "$WORK/https.pbtxt" << EOF
auth { keys_file: "$WORK/keys/keys" }
tls { cert_file: "$C/server.pem" key_file: "$C/server.key" }
EOF
start_server "$WORK/https.log" --config "$WORK/https.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --events_path "$WORK/events_https" --bundle "$WORK/bundles/current"
PIDS+=("$PID")
[[ "$HTTP" == https://* ]] || fail "not HTTPS: $HTTP"
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --record "$WORK/event.csv" --quiet --tls_ca "$C/test-ca.pem" \
  --api_key_file "$WORK/keys/pos" > /dev/null 2> "$WORK/record_https.log" \
  || fail "recording the event over TLS: $(cat "$WORK/record_https.log")"
SPKI=$(openssl x509 -in "$C/server.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)
HOME="$WORK" HMREC_TEST_CA="$C/test-ca.pem" HMREC_TEST_SPKI="$SPKI" HMREC_API_KEY=$(cat "$WORK/keys/ops") \
  /usr/bin/python3 "$SRC/tests/e2e/inspector_test.py" "$HTTP" "$BUILD/tests/artifacts/inspector_https.png" \
  "$WORK/chrome_https" "$TOP" "$ART" || fail "over HTTPS with a key, the rendered page does not match the API"
if grep -qF "$(cat "$WORK/keys/ops")" "$WORK/https.log"; then fail "the key is in the server's log"; fi
echo "inspector: OK"
