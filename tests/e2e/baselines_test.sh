#!/usr/bin/env bash
# End-to-end: datagen -> evaluate split -> baselines -> score, with the real
# programs, on tiny generated data. Every check fails if its feature breaks.
set -euo pipefail
BUILD=${1:?usage: baselines_test.sh BUILD_DIR}
DATAGEN="$BUILD/datagen/hmrec_datagen"
EVALUATE="$BUILD/evaluate/hmrec_evaluate"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }

"$DATAGEN" --scale tiny --out "$WORK/data" --quiet
for f in articles.csv customers.csv transactions_train.csv sample_submission.csv; do
  [[ -s "$WORK/data/$f" ]] || fail "datagen did not write $f"
done
[[ $(head -1 "$WORK/data/transactions_train.csv") == "t_dat,customer_id,article_id,price,sales_channel_id" ]] \
  || fail "transactions header"

"$EVALUATE" split --data "$WORK/data" --holdout_days 7 --out "$WORK/split" --quiet
last_train=$(tail -1 "$WORK/split/train/transactions_train.csv" | cut -d, -f1)
first_truth=$(sed -n 2p "$WORK/split/truth.csv" | cut -d, -f1)
[[ "$last_train" < "$first_truth" ]] || fail "split overlaps: $last_train >= $first_truth"
total=$(( $(wc -l < "$WORK/split/train/transactions_train.csv") + $(wc -l < "$WORK/split/truth.csv") - 2 ))
[[ $total -eq $(( $(wc -l < "$WORK/data/transactions_train.csv") - 1 )) ]] || fail "split lost rows"

ncust=$(( $(wc -l < "$WORK/split/train/customers.csv") - 1 ))
for kind in popular age recent; do
  "$EVALUATE" baseline --data "$WORK/split/train" --kind "$kind" --out "$WORK/$kind.csv" --quiet 2> "$WORK/$kind.log"
  [[ $(( $(wc -l < "$WORK/$kind.csv") - 1 )) -eq $ncust ]] || fail "$kind: not one row per customer"
  "$EVALUATE" score --truth "$WORK/split/truth.csv" --submission "$WORK/$kind.csv" \
    --customers "$WORK/split/train/customers.csv" --json "$WORK/$kind.json" --label "$kind" --quiet
  python3 - "$WORK/$kind.json" <<'PY' || fail "$kind scores"
import json, sys
m = json.load(open(sys.argv[1]))
assert 0 < m["map_at_12"] < 1, m
assert m["expected_customers_missing"] == 0 and m["customers_with_12_valid"] == m["expected_customers"], m
assert m["truth_customers"] > 0 and m["truth_customers_missing"] == 0, m
PY
done
# The second load came from the binary cache.
grep -q "from cache" "$WORK/recent.log" || fail "second load did not use the cache"

# An oracle built from the truth scores exactly 1 (Kaggle's AP@12).
awk -F, 'NR>1 { if (!seen[$2 FS $3]++ && n[$2] < 12) { p[$2] = p[$2] (n[$2]++ ? " " : "") $3 } }
         END { print "customer_id,prediction"; for (c in p) print c "," p[c] }' \
  "$WORK/split/truth.csv" > "$WORK/oracle.csv"
"$EVALUATE" score --truth "$WORK/split/truth.csv" --submission "$WORK/oracle.csv" --json "$WORK/oracle.json" --quiet
[[ $(json "$WORK/oracle.json" map_at_12) == "1.0" ]] || fail "oracle MAP@12 is $(json "$WORK/oracle.json" map_at_12)"

# A broken submission is reported, not crashed on.
victim=$(sed -n 2p "$WORK/split/truth.csv" | cut -d, -f2)
{ head -1 "$WORK/popular.csv"
  grep -v "^$victim" "$WORK/popular.csv" | sed -n '2,$p' | sed '2s/ [0-9]*$/ 12345/; 3s/ [0-9]*$//'
} > "$WORK/broken.csv"
"$EVALUATE" score --truth "$WORK/split/truth.csv" --submission "$WORK/broken.csv" \
  --customers "$WORK/split/train/customers.csv" --json "$WORK/broken.json" --quiet 2> "$WORK/broken.log"
[[ $(json "$WORK/broken.json" truth_customers_missing) -ge 1 ]] || fail "missing customer not reported"
[[ $(json "$WORK/broken.json" expected_customers_missing) -eq 1 ]] || fail "missing row not reported"
[[ $(json "$WORK/broken.json" invalid_article_ids) -eq 1 ]] || fail "bad id not reported"
[[ $(json "$WORK/broken.json" short_rows) -eq 2 ]] || fail "short rows not reported"
grep -q "bad article id '12345'" "$WORK/broken.log" || fail "bad id not named"

# A malformed CSV row stops the load with file and line.
cp -r "$WORK/split/train" "$WORK/bad"
sed -i '5s/,2$/,two/; 5s/,1$/,one/' "$WORK/bad/transactions_train.csv"
if "$EVALUATE" baseline --data "$WORK/bad" --kind popular --out "$WORK/bad.csv" --quiet 2> "$WORK/bad.log"; then
  fail "malformed row accepted"
fi
grep -q "transactions_train.csv:5: column sales_channel_id" "$WORK/bad.log" || fail "error does not name file:line: $(cat "$WORK/bad.log")"
[[ ! -e "$WORK/bad.csv" ]] || fail "a submission was written from bad data"

echo "e2e baselines: all checks passed"
