#!/usr/bin/env bash
# What a catalogue refresh serves when the catalogue moves: the last
# --holdout-days are held out; the articles that never sold before them are
# taken out of the training catalogue (as if they came after training), a
# bundle is trained on the rest, then refreshed with the whole articles.csv
# (hmrec_index_builder --refresh_catalogue). Both are served, a submission
# written through the server for every customer, and scored: MAP@12 and the
# held-out purchases of the new articles that the top 12 caught. The
# refreshed bundle is served twice: as configured (the server's
# new_article_position, 12) and with the new articles left where the ranker
# puts them (after_refresh_unplaced). A last arm, the usual bundle trained
# with the whole catalogue, shows what the refresh's treatment of
# never-sold articles does against it.
#
#   scripts/catalogue_study.sh [--data DIR | --scale small --seed N] [--out DIR] [--holdout-days 7]
#
# Prints one line per arm and writes OUT/catalogue_study.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
DATA="" SCALE=small SEED=1 OUT="" HOLDOUT=7
while [[ $# -gt 0 ]]; do
  case $1 in
    --data) DATA=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --holdout-days) HOLDOUT=$2; shift 2 ;;
    *) echo "catalogue_study.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$ROOT/out/catalogue_study_${SCALE}_$SEED}
mkdir -p "$OUT"
if [[ -z "$DATA" ]]; then
  DATA="$OUT/data"
  [[ -f "$DATA/.complete" ]] || { "$BUILD/datagen/hmrec_datagen" --scale "$SCALE" --seed "$SEED" --out "$DATA" --quiet \
    && touch "$DATA/.complete"; }
fi
EVALUATE="$BUILD/evaluate/hmrec_evaluate"
SPLIT="$OUT/split"
[[ -f "$SPLIT/.complete" ]] || { "$EVALUATE" split --data "$DATA" --holdout_days "$HOLDOUT" --out "$SPLIT" \
  && touch "$SPLIT/.complete"; }

# The training catalogue: only the articles sold before the holdout.
OLD="$OUT/old_catalogue"
mkdir -p "$OLD"
ln -sf "$SPLIT/train/customers.csv" "$OLD/customers.csv"
ln -sf "$SPLIT/train/transactions_train.csv" "$OLD/transactions_train.csv"
/usr/bin/python3 - "$SPLIT/train" "$OLD/articles.csv" "$OUT/new_articles.txt" << 'EOF'
import csv, os, sys
train, out, new_list = sys.argv[1:4]
sold = set()
with open(os.path.join(train, "transactions_train.csv"), newline="") as f:
    for t in csv.DictReader(f):
        sold.add(t["article_id"])
with open(os.path.join(train, "articles.csv"), newline="") as f:
    rows = list(csv.reader(f))
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(rows[0])
    w.writerows(r for r in rows[1:] if r[0] in sold)
with open(new_list, "w") as f:
    f.write("".join(r[0] + "\n" for r in rows[1:] if r[0] not in sold))
EOF

train_and_build() {  # train_and_build DATA_DIR BUNDLES_DIR
  rm -rf "$2" "$2.work"
  "$BUILD/trainer/hmrec_trainer" --config "$ROOT/configs/trainer.pbtxt" --data "$1" --work_dir "$2.work" \
    --bundles "$2" --version trained > /dev/null
  "$BUILD/index_builder/hmrec_index_builder" --config "$ROOT/configs/index_builder.pbtxt" --bundle "$2/trained" \
    --data "$1" --quiet
}
serve_and_write() {  # serve_and_write BUNDLE OUT_CSV [SERVER_CONFIG]
  local log="$2.server.log"
  "$BUILD/server/hmrec_server" --config "${3:-$ROOT/configs/server.pbtxt}" --listen 127.0.0.1:0 --metrics off \
    --http off --bundle "$1" --events off 2> "$log" &
  local pid=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$log" && break; sleep 0.2; done
  local port
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
  "$BUILD/client/hmrec_client" --server "127.0.0.1:$port" --all-customers --data "$SPLIT/train" > "$2"
  kill -TERM "$pid" && wait "$pid"
}

train_and_build "$OLD" "$OUT/bundles_old"
serve_and_write "$OUT/bundles_old/trained" "$OUT/before_refresh.csv"
"$BUILD/index_builder/hmrec_index_builder" --config "$ROOT/configs/index_builder.pbtxt" --refresh_catalogue \
  --bundle "$OUT/bundles_old/trained" --data "$SPLIT/train" --version refreshed --quiet
serve_and_write "$OUT/bundles_old/refreshed" "$OUT/after_refresh.csv"
# The same refreshed bundle without the new articles' place (the ranker's order alone).
{ cat "$ROOT/configs/server.pbtxt"; echo "new_article_position: -1"; } > "$OUT/server_unplaced.pbtxt"
serve_and_write "$OUT/bundles_old/refreshed" "$OUT/after_refresh_unplaced.csv" "$OUT/server_unplaced.pbtxt"
train_and_build "$SPLIT/train" "$OUT/bundles_whole"
serve_and_write "$OUT/bundles_whole/trained" "$OUT/whole_catalogue.csv"

for arm in before_refresh after_refresh after_refresh_unplaced whole_catalogue; do
  "$EVALUATE" score --truth "$SPLIT/truth.csv" --submission "$OUT/$arm.csv" --customers "$SPLIT/train/customers.csv" \
    --json "$OUT/$arm.json" --label "$arm" --quiet > /dev/null
done
/usr/bin/python3 - "$SPLIT/truth.csv" "$OUT/new_articles.txt" "$OUT" << 'EOF'
import collections, csv, json, os, sys
truth_csv, new_file, out = sys.argv[1:4]
new = set(l.strip() for l in open(new_file) if l.strip())
truth = collections.defaultdict(set)
with open(truth_csv, newline="") as f:
    for t in csv.DictReader(f):
        truth[t["customer_id"]].add(t["article_id"])
new_pairs = sum(len(a & new) for a in truth.values())
pairs = sum(len(a) for a in truth.values())
result = {"customers_with_purchases": len(truth), "held_out_pairs": pairs, "pairs_of_new_articles": new_pairs,
          "new_articles": len(new), "arms": {}}
for arm in ("before_refresh", "after_refresh", "after_refresh_unplaced", "whole_catalogue"):
    score = json.load(open(os.path.join(out, arm + ".json")))  # hmrec_evaluate score
    caught, shown = 0, 0
    with open(os.path.join(out, arm + ".csv"), newline="") as f:
        for row in csv.DictReader(f):
            pred = row["prediction"].split()[:12]
            shown += sum(p in new for p in pred)
            caught += len(set(pred) & truth.get(row["customer_id"], set()) & new)
    result["arms"][arm] = {"map_at_12": score["map_at_12"], "new_pairs_caught": caught, "new_articles_shown": shown}
    print(f"{arm:16s} MAP@12 {score['map_at_12']:.5f}  held-out purchases of new articles caught {caught} "
          f"of {new_pairs}  new articles in the lists {shown}")
json.dump(result, open(os.path.join(out, "catalogue_study.json"), "w"), indent=1)
EOF
