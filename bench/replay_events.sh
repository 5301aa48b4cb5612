#!/usr/bin/env bash
# What recording purchases online is worth: the first RECORD_DAYS days of a
# holdout are replayed to a server as RecordPurchases events (hmrec_client
# --record), and the customers who buy in the remaining days are recommended
# before and after; both lists are scored (MAP@12) on those remaining days.
# Also reports the replay's events/s (the embedded store by default;
# --set events.backend=redis needs --redis HOST:PORT).
#
#   bench/replay_events.sh --bundle out/full/bundles/current --holdout out/full/holdout7/truth.csv \
#       [--record_days 3] [--redis 127.0.0.1:6379]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE=""
HOLDOUT=""
DAYS=3
REDIS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --holdout) HOLDOUT=$2; shift 2 ;;
    --record_days) DAYS=$2; shift 2 ;;
    --redis) REDIS=$2; shift 2 ;;
    *) echo "replay_events.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$HOLDOUT" ]] || { sed -n 2,10p "$0" >&2; exit 2; }
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The holdout's days, in order: the first DAYS are recorded, the rest scored.
python3 - "$HOLDOUT" "$DAYS" "$WORK" <<'PY'
import sys
path, days, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path) as f:
    header = f.readline()
    rows = f.readlines()
dates = sorted({r[:10] for r in rows})
if len(dates) <= days:
    sys.exit(f"replay_events.sh: the holdout has {len(dates)} days, fewer than --record_days {days} + 1")
recorded = set(dates[:days])
with open(f"{work}/record.csv", "w") as a, open(f"{work}/rest.csv", "w") as b:
    a.write(header); b.write(header)
    for r in rows:
        (a if r[:10] in recorded else b).write(r)
buyers = sorted({r.split(",")[1] for r in rows if r[:10] not in recorded})
with open(f"{work}/rest_customers.csv", "w") as c:
    c.write("customer_id\n" + "\n".join(buyers) + "\n")
print(f"replay_events: record {dates[0]}..{dates[days - 1]}, score {dates[days]}..{dates[-1]} "
      f"({len(buyers)} buyers)", file=sys.stderr)
PY

{
  grep -v '^events' "$ROOT/configs/server.pbtxt"
  if [[ -n "$REDIS" ]]; then
    echo "events { backend: \"redis\" redis_address: \"$REDIS\" }"
  else
    echo "events { backend: \"rocksdb\" path: \"$WORK/events\" }"
  fi
} > "$WORK/server.pbtxt"
"$BUILD/server/hmrec_server" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics off --bundle "$BUNDLE" \
  2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do grep -q "listening on" "$WORK/server.log" && break; sleep 0.2; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$') \
  || { cat "$WORK/server.log" >&2; exit 1; }
CLIENT=("$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --quiet)
SCORE=("$BUILD/evaluate/hmrec_evaluate" score --truth "$WORK/rest.csv")

"${CLIENT[@]}" --all-customers --customers "$WORK/rest_customers.csv" > "$WORK/before.csv" 2> /dev/null
"${CLIENT[@]}" --record "$WORK/record.csv" 2>&1 | tail -n1 | sed 's/^client: /replay_events: /' >&2
"${CLIENT[@]}" --all-customers --customers "$WORK/rest_customers.csv" > "$WORK/after.csv" 2> /dev/null
"${SCORE[@]}" --submission "$WORK/before.csv" --label "bundle only"
"${SCORE[@]}" --submission "$WORK/after.csv" --label "bundle + recorded days"
