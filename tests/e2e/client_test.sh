#!/usr/bin/env bash
# End-to-end on tiny data, the real programs on 127.0.0.1: datagen -> split ->
# trainer -> index_builder -> server -> client --all-customers -> evaluate.
# Asserts every customer exactly once in input order with 12 unique valid
# articles, MAP@12 above the popularity baseline, the fallback for an unknown
# customer, the same submission from both ranker evaluators, a Python grpcio
# client (interoperability), a client that finishes with an identical submission when the
# server is killed and restarted in the middle of its run, and a client that
# writes nothing and names the customer when the server never comes back.
set -euo pipefail
BUILD=${1:?usage: client_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: client_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CLIENT="$BUILD/client/hmrec_client"

"$BUILD/datagen/hmrec_datagen" --scale tiny --out "$WORK/data" --quiet
"$BUILD/evaluate/hmrec_evaluate" split --data "$WORK/data" --holdout_days 7 --out "$WORK/split" --quiet
TRAIN="$WORK/split/train"
"$BUILD/evaluate/hmrec_evaluate" baseline --data "$TRAIN" --kind popular --out "$WORK/popular.csv" --quiet
"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$TRAIN" \
  --holdout "$WORK/split/truth.csv" --work_dir "$WORK/train" --bundles "$WORK/bundles" --version v1 > /dev/null \
  2> "$WORK/train.log" \
  || { cat "$WORK/train.log" >&2; fail "trainer failed"; }
"$BUILD/index_builder/hmrec_index_builder" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v1" \
  --data "$TRAIN" --quiet 2> "$WORK/ib.log" || { cat "$WORK/ib.log" >&2; fail "index builder failed"; }

serve() {  # serve PORT LOG
  start_server "$2" --config "$SRC/configs/server.pbtxt" --listen "127.0.0.1:$1" --metrics off \
    --bundle "$WORK/bundles/current"
}
serve 0 "$WORK/server1.log"

# The whole submission, with a batch size that makes several calls.
"$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --batch_size 128 --quiet \
  > "$WORK/sub.csv" 2> "$WORK/client.log" || { cat "$WORK/client.log" >&2; fail "client failed"; }
grep -q "1000 customers in" "$WORK/client.log" || fail "no summary: $(cat "$WORK/client.log")"
/usr/bin/python3 - "$WORK/sub.csv" "$TRAIN/sample_submission.csv" "$TRAIN/articles.csv" <<'PY' || fail "submission check"
import csv, sys
sub = list(csv.reader(open(sys.argv[1])))
expected = [r[0] for r in list(csv.reader(open(sys.argv[2])))[1:]]
articles = {r[0] for r in list(csv.reader(open(sys.argv[3])))[1:]}
assert sub[0] == ["customer_id", "prediction"], sub[0]
got = [r[0] for r in sub[1:]]
assert got == expected, "customers differ from sample_submission.csv (order or membership)"
for cid, pred in sub[1:]:
    ids = pred.split(" ")
    assert len(ids) == 12 and len(set(ids)) == 12, (cid, pred)
    assert all(len(i) == 10 and i in articles for i in ids), (cid, pred)
print(f"submission: {len(got)} customers, each once, in order, 12 unique valid articles")
PY

# Sharded: three parts (one per machine in a Job), merged, are byte-identical
# to the single run; a missing part or a repeated one is refused, naming a customer.
for i in 0 1 2; do
  "$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --shard "$i/3" --batch_size 128 --quiet \
    --bundle_version_out "$WORK/part-$i.csv.bundle" > "$WORK/part-$i.csv" 2> "$WORK/part-$i.log" \
    || { cat "$WORK/part-$i.log" >&2; fail "shard $i/3 failed"; }
done
grep -q "part 1 of 3: customers 334..666 of the list" "$WORK/part-1.log" || fail "shard range not reported: $(cat "$WORK/part-1.log")"
"$BUILD/evaluate/hmrec_evaluate" merge --data "$TRAIN" --out "$WORK/merged.csv" \
  "$WORK/part-0.csv" "$WORK/part-1.csv" "$WORK/part-2.csv" 2> "$WORK/merge.log" || { cat "$WORK/merge.log" >&2; fail "merge failed"; }
cmp "$WORK/merged.csv" "$WORK/sub.csv" || fail "3 merged shards differ from the unsharded submission"
first_of_part2=$(sed -n 2p "$WORK/part-2.csv" | cut -d, -f1)
if "$BUILD/evaluate/hmrec_evaluate" merge --data "$TRAIN" --out "$WORK/bad.csv" "$WORK/part-0.csv" "$WORK/part-1.csv" \
     2> "$WORK/merge_missing.log"; then
  fail "merge accepted a missing part"
fi
grep -q "customer $first_of_part2 is in none of the 2 parts (and 332 more)" "$WORK/merge_missing.log" \
  || fail "missing customers not named: $(cat "$WORK/merge_missing.log")"
if "$BUILD/evaluate/hmrec_evaluate" merge --data "$TRAIN" --out "$WORK/bad.csv" "$WORK/part-0.csv" "$WORK/part-1.csv" \
     "$WORK/part-2.csv" "$WORK/part-1.csv" 2> "$WORK/merge_twice.log"; then
  fail "merge accepted a repeated part"
fi
grep -q "is in .*part-1.csv:2 and again in .*part-1.csv:2" "$WORK/merge_twice.log" \
  || fail "repeated customer not named: $(cat "$WORK/merge_twice.log")"
[[ ! -e "$WORK/bad.csv" ]] || fail "a refused merge wrote its output"
if "$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --shard 3/3 > /dev/null 2> "$WORK/shard_bad.log"; then
  fail "--shard 3/3 accepted"
fi
grep -q "shard '3/3' is not I/N with 0 <= I < N" "$WORK/shard_bad.log" || fail "bad shard not named"

# Better than the popularity baseline on the planted data.
EVAL="$BUILD/evaluate/hmrec_evaluate"
"$EVAL" score --truth "$WORK/split/truth.csv" --submission "$WORK/sub.csv" --json "$WORK/model.json" --quiet > /dev/null
"$EVAL" score --truth "$WORK/split/truth.csv" --submission "$WORK/popular.csv" --json "$WORK/pop.json" --quiet > /dev/null
/usr/bin/python3 - "$WORK/model.json" "$WORK/pop.json" <<'PY' || fail "MAP@12 not above the popularity baseline"
import json, sys
m, p = (json.load(open(f))["map_at_12"] for f in sys.argv[1:3])
print(f"MAP@12 served model {m:.4f} vs popular {p:.4f}")
assert m > p
PY
# What users get is what the trainer measured: the submission written through
# the server scores the trainer's offline ranked MAP@12 (same features, same
# ranker), within 0.0005.
/usr/bin/python3 - "$WORK/model.json" "$WORK/bundles/v1/manifest.pbtxt" <<'PY' || fail "served MAP@12 differs from the trainer's"
import json, re, sys
served = json.load(open(sys.argv[1]))["map_at_12"]
text = open(sys.argv[2]).read()
offline = float(re.search(r'name: "ranked_holdout_map_at_12"\s*value: ([0-9.e-]+)', text).group(1))
print(f"MAP@12 served (ranked) {served:.5f}, trainer offline {offline:.5f}")
assert abs(served - offline) <= 0.0005, (served, offline)
PY
# The ranker's trees are scored by the native evaluator by default; the same
# bundle served with --ranker_evaluator xgboost (XGBoost's own predictor)
# writes a byte-identical submission.
grep -q "ranked by the bundle's ranker (native evaluator)" "$WORK/server1.log" \
  || fail "the start line does not name the native evaluator: $(cat "$WORK/server1.log")"
# Where the kernel gives transparent huge pages on request, the server puts
# its heap on them (glibc's malloc advised through GLIBC_TUNABLES, set before
# a re-exec) and says so; a GLIBC_TUNABLES that sets it otherwise decides
# (the second server below, which must serve the same lists on 4 KiB pages).
THP_MADVISE=0
grep -q '\[madvise\]' /sys/kernel/mm/transparent_hugepage/enabled 2> /dev/null && THP_MADVISE=1
if [[ $THP_MADVISE == 1 ]]; then
  grep -q "server: heap on transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1)" "$WORK/server1.log" \
    || fail "the heap is not on huge pages: $(cat "$WORK/server1.log")"
  tr '\0' '\n' < "/proc/$PID/environ" | grep -qx "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" \
    || fail "the server runs without glibc.malloc.hugetlb=1"
fi
MAIN_PID=$PID MAIN_PORT=$PORT
GLIBC_TUNABLES=glibc.malloc.hugetlb=0 start_server "$WORK/server_xgb.log" --config "$SRC/configs/server.pbtxt" \
  --listen 127.0.0.1:0 --metrics off --bundle "$WORK/bundles/current" --ranker_evaluator xgboost --events off
grep -q "ranked by the bundle's ranker (xgboost evaluator)" "$WORK/server_xgb.log" \
  || fail "--ranker_evaluator xgboost not in force: $(cat "$WORK/server_xgb.log")"
if [[ $THP_MADVISE == 1 ]]; then
  grep -q "server: heap on 4 KiB pages (GLIBC_TUNABLES does not set glibc.malloc.hugetlb=1)" "$WORK/server_xgb.log" \
    || fail "GLIBC_TUNABLES glibc.malloc.hugetlb=0 not honoured: $(cat "$WORK/server_xgb.log")"
fi
"$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --batch_size 128 --quiet \
  > "$WORK/sub_xgb.csv" 2> "$WORK/client_xgb.log" || { cat "$WORK/client_xgb.log" >&2; fail "client (xgboost) failed"; }
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
PID=$MAIN_PID PORT=$MAIN_PORT
cmp "$WORK/sub.csv" "$WORK/sub_xgb.csv" \
  || fail "the xgboost evaluator (heap on 4 KiB pages) served other lists than the native one"

# An unknown customer gets the fallback, flagged.
"$CLIENT" --server "127.0.0.1:$PORT" --customer-id "$(printf 'f%.0s' $(seq 1 64))" --data "$TRAIN" > "$WORK/one.txt"
grep -q "fallback: unknown customer" "$WORK/one.txt" || fail "no fallback: $(cat "$WORK/one.txt")"
[[ $(grep -c '^ *[0-9]\+  [0-9]\{10\}' "$WORK/one.txt") -eq 12 ]] || fail "fallback is not 12 articles"
known=$(sed -n 2p "$WORK/sub.csv" | cut -d, -f1)
"$CLIENT" --server "127.0.0.1:$PORT" --customer-id "$known" --data "$TRAIN" --k 5 > "$WORK/known.txt"
grep -q "personalised, ranked" "$WORK/known.txt" || fail "known customer not personalised and ranked"
# Each article with its reasons (and the anchor article's name from articles.csv).
[[ $(grep -cE '(you bought it before|matches your taste|bought together with|another variant of|popular in your age group|trending this week|selling now in the styles you buy|popular right now)[^#]* #[0-9]+' "$WORK/known.txt") -eq 5 ]] \
  || fail "articles without reasons: $(cat "$WORK/known.txt")"

# A client hmrec did not write: python3-grpcio with stubs generated from proto/.
mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
/usr/bin/python3 "$SRC/tests/e2e/interop_test.py" "$WORK/py" "127.0.0.1:$PORT" "$known" || fail "Python interop"

# Killed and restarted in the middle of a run: the client retries and writes
# the same submission. 20 ids a call at <= 400 customers/s: the run needs
# ~2.5 s, the server is gone for 1.5 s of it plus its start-up, which under
# the sanitizers once outlasted the default 10 attempts (~21 s of backoff):
# 20 attempts wait ~70 s, so the test asserts the retrying, not how fast a
# sanitized server starts.
"$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --batch_size 20 --in_flight 1 \
  --max_rate 400 --max_attempts 20 --quiet > "$WORK/sub2.csv" 2> "$WORK/client2.log" &
CPID=$!
sleep 0.7
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
kill -0 "$CPID" 2>/dev/null || fail "the client finished before the server was killed"
sleep 1.5
serve "$PORT" "$WORK/server2.log"
wait "$CPID" || { cat "$WORK/client2.log" >&2; fail "client did not survive the restart"; }
grep -Eq " [1-9][0-9]* retries" "$WORK/client2.log" || fail "no retries recorded: $(cat "$WORK/client2.log")"
cmp -s "$WORK/sub.csv" "$WORK/sub2.csv" || fail "submission after a restart differs from the uninterrupted one"

# Requests the server will never accept (batches above its
# max_ids_per_request): a permanent error stops the run at once, named,
# without retries and without output.
sed -e '/^max_ids_per_request:/d; /^max_queued_ids:/d' "$SRC/configs/server.pbtxt" > "$WORK/small.pbtxt"
printf 'max_ids_per_request: 100\nmax_queued_ids: 1000\n' >> "$WORK/small.pbtxt"
MAIN_PID=$PID MAIN_PORT=$PORT
start_server "$WORK/server_small.log" --config "$WORK/small.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --bundle "$WORK/bundles/current" --events_path "$WORK/events-small"
if "$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --batch_size 128 --quiet \
     > "$WORK/sub4.csv" 2> "$WORK/client4.log"; then fail "client succeeded with batches above the server's limit"; fi
grep -q "permanent error, not retried: 128 customer_ids, at most 100 per request" "$WORK/client4.log" \
  || fail "permanent error not named: $(cat "$WORK/client4.log")"
grep -q "retries" "$WORK/client4.log" && fail "a permanent error was retried: $(cat "$WORK/client4.log")"
[[ ! -s "$WORK/sub4.csv" ]] || fail "a failed run wrote a partial submission"
kill -TERM "$PID"; wait "$PID" || fail "server exit code after SIGTERM"
PID=$MAIN_PID PORT=$MAIN_PORT

# Replaying purchases (--record): the holdout's transactions become events;
# a second replay, after a crash of the server, records nothing twice; a
# malformed row is named with its file and line, and nothing of its batch
# is sent.
"$CLIENT" --server "127.0.0.1:$PORT" --record "$WORK/split/truth.csv" --batch_size 50 --quiet 2> "$WORK/rec1.log" \
  || { cat "$WORK/rec1.log" >&2; fail "--record failed"; }
ROWS=$(/usr/bin/python3 -c "import sys; print(f'{int(sys.argv[1]) - 1:,}')" "$(wc -l < "$WORK/split/truth.csv")")
grep -Eq "^client: ${ROWS} events from .* [0-9,]+ recorded, 0 duplicates" "$WORK/rec1.log" \
  || fail "first replay: $(cat "$WORK/rec1.log")"
# The server is SIGKILLed right after the last acknowledged call and
# restarted on the same embedded store: every event is there, none twice.
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
serve "$PORT" "$WORK/server3.log"
"$CLIENT" --server "127.0.0.1:$PORT" --record "$WORK/split/truth.csv" --batch_size 50 --quiet 2> "$WORK/rec2.log" \
  || fail "second replay failed: $(cat "$WORK/rec2.log")"
grep -Eq " 0 recorded, ${ROWS} duplicates" "$WORK/rec2.log" \
  || fail "after a SIGKILL, acknowledged events lost or counted twice: $(cat "$WORK/rec2.log")"
{ head -n 3 "$WORK/split/truth.csv"; echo "2020-09-99,not-a-row"; } > "$WORK/bad.csv"
if "$CLIENT" --server "127.0.0.1:$PORT" --record "$WORK/bad.csv" --quiet 2> "$WORK/rec3.log"; then
  fail "a malformed row was accepted"
fi
grep -q "bad.csv:4" "$WORK/rec3.log" || fail "malformed row not named by file and line: $(cat "$WORK/rec3.log")"

# A server that never comes back: non-zero exit, the customer named, no output.
kill -TERM "$PID"; wait "$PID" || fail "server exit code after SIGTERM"; PID=""
if "$CLIENT" --server "127.0.0.1:$PORT" --all-customers --data "$TRAIN" --max_attempts 3 --quiet \
     > "$WORK/sub3.csv" 2> "$WORK/client3.log"; then fail "client succeeded without a server"; fi
grep -q "could not be served" "$WORK/client3.log" || fail "unclear failure: $(cat "$WORK/client3.log")"
grep -q "no submission written" "$WORK/client3.log" || fail "failure does not say nothing was written"
[[ ! -s "$WORK/sub3.csv" ]] || fail "a failed run wrote a partial submission"
echo "e2e client: all checks passed"
