#!/usr/bin/env bash
# The validation gate (hmrec_gate) on tiny generated data with the last 7
# days held out: a bundle trained on a tenth of the transactions is refused
# for its MAP@12 and current stays; one trained on all of them is promoted;
# an unsealed candidate and one whose data holds the held-out days are
# refused naming why; --no_promote judges without moving current. Each verdict comes as JSON and one stderr line.
#
#   tests/e2e/gate_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
SRC=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$BUILD/datagen/hmrec_datagen" --scale tiny --out "$WORK/all" --quiet
"$BUILD/evaluate/hmrec_evaluate" split --data "$WORK/all" --holdout_days 7 --out "$WORK/split" --quiet 2> /dev/null \
  || fail "split"
mkdir -p "$WORK/tenth"
cp "$WORK/split/train/articles.csv" "$WORK/split/train/customers.csv" "$WORK/tenth/"
awk 'NR == 1 || NR % 10 == 2' "$WORK/split/train/transactions_train.csv" > "$WORK/tenth/transactions_train.csv"

build() {  # build VERSION DATA [--no_promote | --make_current=false]
  "$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$2" --work_dir "$WORK/w-$1" \
    --bundles "$WORK/bundles" --version "$1" --epochs 1 > /dev/null 2> "$WORK/train-$1.log" \
    || { cat "$WORK/train-$1.log" >&2; fail "trainer $1"; }
  "$BUILD/index_builder/hmrec_index_builder" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/$1" \
    --data "$2" --quiet "${@:3}" 2> "$WORK/ib-$1.log" || { cat "$WORK/ib-$1.log" >&2; fail "index builder $1"; }
}
gate() {  # gate VERSION: exit code in GATE_RC, JSON in $WORK/gate-VERSION.json, stderr line in ...log
  set +e
  "$BUILD/gate/hmrec_gate" --bundles "$WORK/bundles" --candidate "$1" --holdout "$WORK/split/truth.csv" \
    --report "$WORK/gate-$1.json" > /dev/null 2> "$WORK/gate-$1.log"
  GATE_RC=$?
  set -e
}
current() { readlink "$WORK/bundles/current"; }

build v1 "$WORK/split/train"
[[ $(current) == v1 ]] || fail "v1 is not current"

# A tenth of the data: refused for its quality, current stays.
build weak "$WORK/tenth" --no_promote
gate weak
[[ $GATE_RC == 1 ]] || fail "the weak bundle passed: $(cat "$WORK/gate-weak.log")"
grep -q "refused: quality: MAP@12" "$WORK/gate-weak.log" || fail "weak: $(cat "$WORK/gate-weak.log")"
[[ $(current) == v1 ]] || fail "current moved after a refusal"
/usr/bin/python3 - "$WORK/gate-weak.json" << 'PYEOF' || fail "weak report: $(cat "$WORK/gate-weak.json")"
import json, sys
r = json.load(open(sys.argv[1]))
checks = {c["name"]: c["passed"] for c in r["checks"]}
assert not r["passed"] and not r["promoted"] and not checks["quality"], r
assert checks["sealed and intact"] and checks["same catalogue"] and checks["batch parity"], r
assert r["candidate_map_at_12"] < 0.98 * r["current_map_at_12"], r
print(f"gate refused the tenth-of-the-data bundle: MAP@12 {r['candidate_map_at_12']:.4f} vs {r['current_map_at_12']:.4f}")
PYEOF

# Trained on all the training days: judged only (--no_promote: passes, current
# stays), then promoted.
build v2 "$WORK/split/train" --make_current=false
"$BUILD/gate/hmrec_gate" --bundles "$WORK/bundles" --candidate v2 --holdout "$WORK/split/truth.csv" --no_promote \
  > /dev/null 2> "$WORK/gate-judge.log" || fail "v2 judged only: $(cat "$WORK/gate-judge.log")"
grep -q "passes" "$WORK/gate-judge.log" && ! grep -q "current -> v2" "$WORK/gate-judge.log" \
  || fail "--no_promote: $(cat "$WORK/gate-judge.log")"
[[ $(current) == v1 ]] || fail "--no_promote moved current"
gate v2
[[ $GATE_RC == 0 ]] || fail "v2 was refused: $(cat "$WORK/gate-v2.log")"
grep -q "passes" "$WORK/gate-v2.log" || fail "v2: $(cat "$WORK/gate-v2.log")"
[[ $(current) == v2 ]] || fail "v2 passed but is not current"

# Unsealed (never index-built): refused, naming it.
"$BUILD/trainer/hmrec_trainer" --config "$SRC/tests/data/trainer_tiny.pbtxt" --data "$WORK/split/train" \
  --work_dir "$WORK/w-raw" --bundles "$WORK/bundles" --version raw --epochs 1 > /dev/null 2>&1 || fail "trainer raw"
gate raw
[[ $GATE_RC == 1 ]] && grep -q "sealed and intact: .*not sealed" "$WORK/gate-raw.log" \
  || fail "unsealed: $(cat "$WORK/gate-raw.log")"

# Trained on the held-out days too: refused, its score would be flattered.
build leaky "$WORK/all" --make_current=false
gate leaky
[[ $GATE_RC == 1 ]] && grep -q "unseen days (candidate)" "$WORK/gate-leaky.log" \
  || fail "leaky: $(cat "$WORK/gate-leaky.log")"
[[ $(current) == v2 ]] || fail "current moved after a refusal"
