#!/usr/bin/env bash
# The catalogue refresh end to end: a bundle trained without 20 articles (as
# if they came to the catalogue after training), refreshed with the newer
# articles.csv by `hmrec_index_builder --refresh_catalogue` while the real
# server answers Recommend and SimilarArticles under load: the server swaps to
# the new version with 0 failed calls, SimilarArticles answers for the new
# articles (mostly of their type), and Recommend shows them to customers
# whose taste fits (tests/e2e/catalogue_test.py). A catalogue with a
# duplicate or malformed row is refused with file:line and `current` stays.
# Then `--rollback` takes current back to v1 under the same load.
#
#   tests/e2e/catalogue_test.sh BUILD_DIR SOURCE_DIR
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
PY="$SRC/tests/e2e/catalogue_test.py"
IB="$BUILD/index_builder/hmrec_index_builder"

"$BUILD/datagen/hmrec_datagen" --scale tiny --out "$WORK/all" --quiet
/usr/bin/python3 "$SRC/tests/e2e/catalogue_split.py" "$WORK/all" "$WORK" 20 > "$WORK/withheld.txt"
[[ $(wc -l < "$WORK/withheld.txt") == 20 ]] || fail "the split did not withhold 20 articles"
"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/train" \
  --work_dir "$WORK/work" --bundles "$WORK/bundles" --version v1 --epochs 1 > /dev/null 2> "$WORK/train.log" \
  || { cat "$WORK/train.log" >&2; fail "trainer"; }
"$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v1" --data "$WORK/train" --quiet \
  2> "$WORK/ib.log" || { cat "$WORK/ib.log" >&2; fail "index builder"; }

sed -e 's/^bundle_watch_ms: .*/bundle_watch_ms: 100/' "$SRC/configs/server.pbtxt" > "$WORK/server.pbtxt"
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current" --events_path "$WORK/events"
PIDS+=("$PID")
[[ -n "$HTTP" ]] || fail "no HTTP API line: $(cat "$WORK/server.log")"
NEW=$(head -n1 "$WORK/withheld.txt")
CODE=$(curl -s -o "$WORK/before.json" -w '%{http_code}' -X POST --data "{\"article_ids\": [\"$NEW\"], \"k\": 12}" \
  "$HTTP/v1/similar")
[[ "$CODE" == 200 ]] && grep -q "\"fallback\":true" "$WORK/before.json" \
  || fail "before the refresh, $NEW should be unknown (fallback): HTTP $CODE $(cat "$WORK/before.json")"

# Refused: a duplicate row, a malformed row; nothing written, current stays.
mkdir -p "$WORK/dup" "$WORK/bad"
cp "$WORK/newer/articles.csv" "$WORK/dup/articles.csv"
tail -n1 "$WORK/newer/articles.csv" >> "$WORK/dup/articles.csv"
LINES=$(wc -l < "$WORK/newer/articles.csv")
cp "$WORK/newer/articles.csv" "$WORK/bad/articles.csv"
echo "0999999001,1,not enough columns" >> "$WORK/bad/articles.csv"
for d in dup bad; do
  if "$IB" --config "$SRC/configs/index_builder.pbtxt" --refresh_catalogue --bundle "$WORK/bundles/v1" \
    --data "$WORK/$d" --version "v$d" --quiet 2> "$WORK/$d.log"; then
    fail "a catalogue with a $d row was accepted"
  fi
  grep -q "$WORK/$d/articles.csv:$((LINES + 1)):" "$WORK/$d.log" || fail "$d: no file:line in $(cat "$WORK/$d.log")"
  [[ ! -e "$WORK/bundles/v$d" ]] || fail "$d: a bundle was written"
done
[[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "current moved after a refused refresh"

# under_load VERSION CMD...: two clients call both APIs without pause while
# CMD moves current; the server must swap to VERSION with 0 failed calls,
# both versions answering.
under_load() {
  local want=$1
  shift
  rm -f "$WORK/stop" "$WORK"/load*.json
  local loaders=()
  for c in 1 2; do
    /usr/bin/python3 "$PY" load "$HTTP" "$WORK/stop" "$WORK/load$c.json" "$WORK/train/customers.csv" \
      "$WORK/train/articles.csv" &
    PIDS+=("$!")
    loaders+=("$!")
  done
  sleep 1
  local swaps
  swaps=$(grep -c "now serving bundle $want " "$WORK/server.log" || true)
  "$@" 2> "$WORK/move.log" || { cat "$WORK/move.log" >&2; fail "$*"; }
  [[ $(readlink "$WORK/bundles/current") == "$want" ]] || fail "current does not name $want"
  for _ in $(seq 1 100); do
    [[ $(grep -c "now serving bundle $want " "$WORK/server.log" || true) -gt $swaps ]] && break
    sleep 0.1
  done
  [[ $(grep -c "now serving bundle $want " "$WORK/server.log" || true) -gt $swaps ]] \
    || fail "the server did not swap to $want: $(cat "$WORK/server.log")"
  sleep 1
  touch "$WORK/stop"
  for p in "${loaders[@]}"; do wait "$p" || fail "a load client failed"; done
  /usr/bin/python3 - "$want" "$WORK/load1.json" "$WORK/load2.json" << 'PYEOF' || fail "calls failed across the swap to $want"
import json, sys
want, runs = sys.argv[1], [json.load(open(f)) for f in sys.argv[2:]]
calls = sum(r["calls"] for r in runs)
failures = sum(r["failures"] for r in runs)
new = sum(r["versions"].get(want, 0) for r in runs)
print(f"across the swap to {want}: {calls} calls, {failures} failed, {new} answered by {want}")
assert failures == 0, [r["errors"] for r in runs]
assert new > 0 and calls > new, runs
PYEOF
}

# The refresh under load.
under_load v2 "$IB" --config "$SRC/configs/index_builder.pbtxt" --refresh_catalogue --bundle "$WORK/bundles/v1" \
  --data "$WORK/newer" --version v2
grep -q "20 articles added" "$WORK/move.log" || fail "refresh report: $(cat "$WORK/move.log")"

/usr/bin/python3 "$PY" check "$HTTP" "$WORK/newer/articles.csv" "$WORK/all/customers.csv" \
  "$WORK/all/transactions_train.csv" "$WORK/withheld.txt" || fail "what the refreshed bundle serves"

# A purchase of a new article is recorded and shapes the next list (the
# customer tower leaves it out of its history; the ranking reads it).
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
C=$(sed -n 2p "$WORK/train/customers.csv" | cut -d, -f1)
/usr/bin/python3 "$PY" record "$WORK/py" "127.0.0.1:$PORT" "$HTTP" "$C" "$NEW" || fail "a purchase of new article $NEW"
# Going back under load: current returns to v1 (the version before), the
# server follows with 0 failed calls; nothing before v1: refused.
under_load v1 "$IB" --rollback --bundles "$WORK/bundles"
grep -q "rolled back from v2" "$WORK/move.log" || fail "rollback report: $(cat "$WORK/move.log")"
if "$IB" --rollback --bundles "$WORK/bundles" 2> "$WORK/rollback2.log"; then fail "a rollback past the first version"; fi
grep -q "nothing to go back to" "$WORK/rollback2.log" || fail "rollback refusal: $(cat "$WORK/rollback2.log")"
[[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "a refused rollback moved current"

kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"
