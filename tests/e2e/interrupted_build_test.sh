#!/usr/bin/env bash
# An index build killed (SIGKILL) at each of its crash points
# (common/crash_point.h) while a server serves bundles/current with hot swap
# on: the current bundle stays current, intact and served; the half-built
# bundle is refused; building it again afterwards succeeds and is picked up.
set -euo pipefail
BUILD=$1
SRC=$2
source "$SRC/tests/e2e/lib.sh"
WORK=$(mktemp -d)
PID=""
trap '[[ -n "$PID" ]] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
IB="$BUILD/index_builder/hmrec_index_builder"

make_tiny_bundle "$BUILD" "$SRC" "$WORK"
# A second trained (not yet indexed) bundle on the same data.
"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/data" \
  --work_dir "$WORK/train2" --bundles "$WORK/bundles" --version v2 --epochs 1 > /dev/null 2> "$WORK/train2.log" \
  || { cat "$WORK/train2.log" >&2; fail "trainer v2"; }
cp -a "$WORK/bundles/v2" "$WORK/v2.trained"
sha_v1=$(cd "$WORK/bundles/v1" && find . -type f ! -name 'LOG*' ! -name LOCK -print0 | sort -z | xargs -0 sha256sum)

sed -e 's/^bundle_watch_ms: .*/bundle_watch_ms: 100/' "$SRC/configs/server.pbtxt" > "$WORK/server.pbtxt"
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$WORK/bundles/current"
scrape() { /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$MURL"; }
# The metrics contain PATTERN (scraped to a file first: `scrape | grep -q`
# fails under pipefail when grep stops reading before the scrape is written).
serves() { scrape > "$WORK/metrics.txt" && grep -q "$1" "$WORK/metrics.txt"; }
ID=$(sed -n 2p "$WORK/data/customers.csv" | cut -d, -f1)
ask() { "$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$ID" 2>&1; }

for point in index_written store_half_written store_written before_seal before_current_switch; do
  rm -rf "$WORK/bundles/v2"
  cp -a "$WORK/v2.trained" "$WORK/bundles/v2"
  set +e
  HMREC_CRASH_AT=$point "$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" \
    --data "$WORK/data" --quiet 2> "$WORK/ib_$point.log"
  rc=$?
  set -e
  [[ $rc -eq 137 ]] || fail "$point: the builder was not killed (exit $rc): $(cat "$WORK/ib_$point.log")"
  grep -q "crash point $point" "$WORK/ib_$point.log" || fail "$point: crash point not reached"
  [[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "$point: current moved to $(readlink "$WORK/bundles/current")"
  sleep 0.5  # several hot-swap checks
  serves '^hmrec_bundle_info{arm="main",version="v1"} 1' || fail "$point: the server no longer serves v1"
  [[ $(ask) == *"bundle v1"* ]] || fail "$point: a call was not answered by v1: $(ask)"
  # The half-built bundle cannot be served (before_current_switch: it is
  # complete and sealed, only not current yet).
  if [[ $point != before_current_switch ]]; then
    if timeout 60 "$BUILD/server/hmrec_server" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 \
         --metrics off --bundle "$WORK/bundles/v2" 2> "$WORK/s_$point.log"; then
      fail "$point: a half-built bundle was served"
    fi
    grep -q "not sealed" "$WORK/s_$point.log" || fail "$point: unclear refusal: $(cat "$WORK/s_$point.log")"
  fi
done
# The served bundle was never written to.
[[ "$(cd "$WORK/bundles/v1" && find . -type f ! -name 'LOG*' ! -name LOCK -print0 | sort -z | xargs -0 sha256sum)" == "$sha_v1" ]] \
  || fail "files of the current bundle changed"
# Building again over the interrupted attempt (store_half_written leaves a
# partial .sst, before_current_switch a sealed bundle and a stray link).
rm -rf "$WORK/bundles/v2"
cp -a "$WORK/v2.trained" "$WORK/bundles/v2"
HMREC_CRASH_AT=store_half_written "$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" \
  --data "$WORK/data" --quiet 2> /dev/null && fail "not killed"
"$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" --data "$WORK/data" --quiet \
  2> "$WORK/ib_again.log" || fail "rebuild after an interrupted build: $(cat "$WORK/ib_again.log")"
[[ $(readlink "$WORK/bundles/current") == v2 ]] || fail "the rebuilt bundle did not become current"
for _ in $(seq 1 50); do serves '^hmrec_bundle_info{arm="main",version="v2"} 1' && break; sleep 0.2; done
serves '^hmrec_bundle_info{arm="main",version="v2"} 1' || fail "the server did not swap to the rebuilt v2"
[[ $(ask) == *"bundle v2"* ]] || fail "a call was not answered by v2"
kill -TERM $PID
wait $PID || fail "server exited non-zero"
PID=""
echo "e2e interrupted build: all checks passed"
