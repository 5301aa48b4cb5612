#!/usr/bin/env bash
# The inspector page in a real browser: Debian's chromium, headless, driven
# through chromedriver (python3-selenium), loads GET /inspect from the real
# hmrec_server on a tiny ranked bundle, submits customer ids, and the
# rendered recommendations, names and reasons must equal the API's answers
# (tests/e2e/inspector_test.py). A screenshot is kept in
# BUILD/tests/artifacts/inspector.png.
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
start_server "$WORK/server.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --http 127.0.0.1:0 --events_path "$WORK/events" --bundle "$WORK/bundles/current"
PIDS+=("$PID")
HTTP=$(grep -o 'http://127.0.0.1:[0-9]*/v1/recommend' "$WORK/server.log" | sed 's|/v1/recommend||') \
  || fail "no HTTP API line: $(cat "$WORK/server.log")"

# The page is self-contained: nothing loaded from another origin.
curl -sf "$HTTP/inspect" > "$WORK/page.html" || fail "GET /inspect"
grep -q "<title>hmrec inspector</title>" "$WORK/page.html" || fail "not the inspector page"
if grep -Eq '(src|href)="(https?:)?//' "$WORK/page.html"; then fail "the page loads something from elsewhere"; fi

mkdir -p "$BUILD/tests/artifacts"
HOME="$WORK" /usr/bin/python3 "$SRC/tests/e2e/inspector_test.py" "$HTTP" "$WORK/data" \
  "$BUILD/tests/artifacts/inspector.png" "$WORK/chrome" || fail "the rendered page does not match the API"
[[ -s "$BUILD/tests/artifacts/inspector.png" ]] || fail "no screenshot"
echo "inspector: OK"
