#!/usr/bin/env bash
# Merchandising rules with the real hmrec_server on 127.0.0.1
# (tests/e2e/rules_test.py does the calls): `hmrec_rules check` accepts a
# good file and refuses a bad one with file:line, as the server does at
# start; with diversity { max_per_product_code: 1 } no list of 1,000
# customers holds two articles of one product code and every list holds k;
# articles written to the unavailable_file under load vanish from every API
# within one bundle_watch_ms (0 failed calls); a campaign moves its articles
# up only inside its dates and segment; a pin takes its place; a bad file is
# refused and the rules in force stay; SIGHUP re-reads; the inspector's
# /v1/rules shows the rules in force; the batch client's submission follows
# the rules; `hmrec_rules diff` reports what a change would do.
#
#   tests/e2e/rules_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
WORK=$(mktemp -d)
PID=""
cleanup() {
  [[ -n $PID ]] && kill -9 "$PID" 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_tiny_bundle "$BUILD" "$SRC" "$WORK"
RULES=$WORK/rules/rules.pbtxt
mkdir -p "$WORK/rules"
: > "$WORK/rules/unavailable.txt"
cat > "$RULES" << 'PB'
unavailable_file: "unavailable.txt"
diversity { max_per_product_code: 1 }
PB

# Offline check: the same validation as the server's.
"$BUILD/rules/hmrec_rules" check "$RULES" --bundle "$WORK/bundles/current" > "$WORK/check.out" 2>&1 \
  || fail "check of a good file: $(cat "$WORK/check.out")"
grep -q "valid: 0 unavailable articles, diversity max_per_product_code 1" "$WORK/check.out" \
  || fail "check output: $(cat "$WORK/check.out")"
# The repository's example file is valid.
"$BUILD/rules/hmrec_rules" check "$SRC/configs/rules.pbtxt" > "$WORK/example.out" 2>&1 \
  || fail "configs/rules.pbtxt: $(cat "$WORK/example.out")"
cat > "$WORK/rules/bad.pbtxt" << 'PB'
diversity { max_per_product_code: 1 }
campaigns {
  name: "winter"
  articles { product_type_name: "Sweater" }
  score_factor: 2
  start_date: "2026-12-20"
  end_date: "2026-12-01"
}
PB
if "$BUILD/rules/hmrec_rules" check "$WORK/rules/bad.pbtxt" > "$WORK/bad.out" 2>&1; then fail "check passed a bad file"; fi
grep -q "bad.pbtxt:7: campaign \"winter\": end_date 2026-12-01 is before start_date 2026-12-20" "$WORK/bad.out" \
  || fail "check's refusal: $(cat "$WORK/bad.out")"

config() {  # config FILE RULES
  sed 's/^bundle_watch_ms: .*/bundle_watch_ms: 300/' "$SRC/configs/server.pbtxt" > "$1"
  printf 'rules_file: "%s"\nrules_date: "2026-12-05"\n' "$2" >> "$1"
}
config "$WORK/bad.pbtxt" "$WORK/rules/bad.pbtxt"
if timeout 60 "$BUILD/server/hmrec_server" --config "$WORK/bad.pbtxt" --listen 127.0.0.1:0 --metrics off \
  --bundle "$WORK/bundles/current" --events off 2> "$WORK/bad.log"; then
  fail "the server started with a bad rules file"
fi
grep -q "rules_file: .*bad.pbtxt:7: campaign \"winter\"" "$WORK/bad.log" || fail "start refusal: $(cat "$WORK/bad.log")"

config "$WORK/server.pbtxt" "$RULES"
start_server "$WORK/server.log" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --http 127.0.0.1:0 --bundle "$WORK/bundles/current" --events off
grep -q "merchandising rules from $RULES: 0 unavailable articles" "$WORK/server.log" \
  || fail "start line: $(cat "$WORK/server.log")"

mkdir -p "$WORK/py"
/usr/bin/python3 -m grpc_tools.protoc -I "$SRC/proto" --python_out="$WORK/py" --grpc_python_out="$WORK/py" \
  "$SRC/proto/recommender.proto" || fail "cannot generate Python stubs"
/usr/bin/python3 "$SRC/tests/e2e/rules_test.py" "$WORK" "$BUILD" "127.0.0.1:$PORT" "$HTTP" "$MURL" "$PID" \
  || fail "rules_test.py"
grep -q "refused the merchandising rules: .*rules.pbtxt:1:" "$WORK/server.log" \
  || fail "no refusal line: $(grep rules "$WORK/server.log")"
# The batch client's submission follows the rules in force too (one article
# per product code, none of the unavailable ones).
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --all-customers --data "$WORK/data" --quiet \
  > "$WORK/submission.csv" 2> "$WORK/client.log" || { cat "$WORK/client.log" >&2; fail "batch client"; }
/usr/bin/python3 - "$WORK/submission.csv" "$WORK/data/articles.csv" "$WORK/rules/unavailable.txt" << 'PYEOF' \
  || fail "the submission breaks the rules"
import csv, sys
code = {r["article_id"]: r["product_code"] for r in csv.DictReader(open(sys.argv[2]))}
gone = {l.strip() for l in open(sys.argv[3]) if l.strip() and not l.startswith("#")}
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 1000 and gone, (len(rows), len(gone))
for r in rows:
    ids = r["prediction"].split()
    assert len(ids) == 12 and len({code[a] for a in ids}) == 12 and not set(ids) & gone, r
print(f"batch client: {len(rows)} customers, one article per product code, none of {len(gone)} unavailable")
PYEOF
kill -TERM "$PID"
wait "$PID" || fail "server exit code after SIGTERM"
PID=""

# What a change would do, before it goes live: the holdout's customers' lists
# without rules and with a cap of one article per product code.
"$BUILD/evaluate/hmrec_evaluate" split --data "$WORK/data" --holdout_days 7 --out "$WORK/split" --quiet 2> /dev/null \
  || fail "split"
printf 'diversity { max_per_product_code: 1 }\n' > "$WORK/rules/cap1.pbtxt"
"$BUILD/rules/hmrec_rules" diff --bundle "$WORK/bundles/current" --rules "$WORK/rules/cap1.pbtxt" \
  --holdout "$WORK/split/truth.csv" --customers 300 --date 2026-12-05 --json \
  > "$WORK/diff.json" 2> "$WORK/diff.log" || { cat "$WORK/diff.log" >&2; fail "diff"; }
/usr/bin/python3 - "$WORK/diff.json" << 'PYEOF' || fail "diff output"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["customers"] > 0 and d["changed_lists"] > 0 and d["capped"] > 0, d
assert d["articles_added"] == d["articles_removed"] > 0, d
assert 0 <= d["map_before"] <= 1 and 0 <= d["map_after"] <= 1, d
print(f"diff: {d['changed_lists']} of {d['customers']} lists change with a cap of 1 per product code; "
      f"MAP@12 {d['map_before']:.4f} -> {d['map_after']:.4f}")
PYEOF
echo "e2e_rules: OK"
