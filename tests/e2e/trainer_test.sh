#!/usr/bin/env bash
# End-to-end: datagen -> split -> hmrec_trainer -> bundle, with the real
# programs on tiny data: the bundle is complete and its checksums hold,
# metrics and checkpoints are written, a resumed run continues, and bad
# requests fail with clear messages.
set -euo pipefail
BUILD=${1:?usage: trainer_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: trainer_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
TRAINER="$BUILD/trainer/hmrec_trainer"
CFG="$SRC/tests/data/trainer_tiny.pbtxt"

"$BUILD/datagen/hmrec_datagen" --scale tiny --out "$WORK/data" --quiet
"$BUILD/evaluate/hmrec_evaluate" split --data "$WORK/data" --holdout_days 7 --out "$WORK/split" --quiet

bundle=$("$TRAINER" --config "$CFG" --data "$WORK/split/train" --holdout "$WORK/split/truth.csv" \
  --work_dir "$WORK/train" --bundles "$WORK/bundles" --version v1 2> "$WORK/train.log") \
  || { cat "$WORK/train.log" >&2; fail "trainer failed"; }
[[ "$bundle" == "$WORK/bundles/v1" ]] || fail "stdout should be the bundle path, got '$bundle'"
for f in manifest.pbtxt customer_tower.pt article_embeddings.bin vocabularies.pbtxt training_metrics.jsonl; do
  [[ -s "$bundle/$f" ]] || fail "bundle lacks $f"
done
[[ ! -e "$WORK/bundles/v1.partial" ]] || fail "temporary bundle directory left behind"
grep -q 'features_as_of: "2020-09-16"' "$bundle/manifest.pbtxt" || fail "features_as_of is not the day after training"
grep -q 'name: "holdout_map_at_12"' "$bundle/manifest.pbtxt" || fail "manifest lacks the offline metric"
# Every file the manifest names has the size it says.
python3 - "$bundle" <<'PY' || fail "manifest sizes"
import os, re, sys
d = sys.argv[1]
text = open(os.path.join(d, "manifest.pbtxt")).read()
files = re.findall(r'files \{\s*name: "([^"]+)"\s*size: (\d+)\s*crc32: "([0-9a-f]{8})"', text)
assert len(files) >= 4, files
for name, size, _ in files:
    assert os.path.getsize(os.path.join(d, name)) == int(size), name
PY
# Progress lines with rate and ETA, and one metrics line per epoch.
grep -q "examples/s" "$WORK/train.log" || fail "no progress line"
grep -q "holdout MAP@12" "$WORK/train.log" || fail "no per-epoch evaluation"
[[ $(wc -l < "$WORK/train/training_metrics.jsonl") -eq 2 ]] || fail "expected 2 epochs of metrics"
[[ -d "$WORK/train/checkpoints/epoch-001" ]] || fail "no checkpoint of the last epoch"
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  [[ -s "$WORK/train/training_curve.png" ]] || fail "no training curve"
fi

# Resuming a finished run trains nothing more and exports the same model.
"$TRAINER" --config "$CFG" --data "$WORK/split/train" --holdout "$WORK/split/truth.csv" \
  --work_dir "$WORK/train" --bundles "$WORK/bundles" --version v2 --resume > /dev/null 2> "$WORK/resume.log"
grep -q "resuming after epoch 2" "$WORK/resume.log" || fail "resume did not find the checkpoint"
cmp -s "$WORK/bundles/v1/article_embeddings.bin" "$WORK/bundles/v2/article_embeddings.bin" \
  || fail "resumed export differs"

# An existing version is never overwritten; a missing GPU is a clear error.
if "$TRAINER" --config "$CFG" --data "$WORK/split/train" --work_dir "$WORK/t2" --bundles "$WORK/bundles" \
     --version v1 --epochs 1 > /dev/null 2> "$WORK/exists.log"; then
  fail "overwrote bundle v1"
fi
grep -q "exists" "$WORK/exists.log" || fail "no message for an existing version"
if ! "$TRAINER" --config "$CFG" --data "$WORK/split/train" --work_dir "$WORK/t3" --bundles "$WORK/b3" \
     --device cuda --epochs 1 > /dev/null 2> "$WORK/cuda.log"; then
  grep -q "device 'cuda'" "$WORK/cuda.log" || fail "unclear CUDA error: $(cat "$WORK/cuda.log")"
fi
# The index builder makes v1 servable, seals it and points current at it.
IB="$BUILD/index_builder/hmrec_index_builder"
"$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v1" --data "$WORK/split/train" \
  --quiet 2> "$WORK/ib.log" || { cat "$WORK/ib.log" >&2; fail "index builder failed"; }
[[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "current does not point at v1"
grep -q "sealed: true" "$WORK/bundles/v1/manifest.pbtxt" || fail "v1 not sealed"
for f in index.faiss fallback.pbtxt features.rocksdb/CURRENT; do
  [[ -e "$WORK/bundles/v1/$f" ]] || fail "servable bundle lacks $f"
done
# The fallback covers every k the server allows (max_k 100): 1000 by default, here the whole tiny catalogue.
[[ $(grep -c "article_ids:" "$WORK/bundles/v1/fallback.pbtxt") -eq 400 ]] || fail "fallback is not the whole 400-article catalogue"
# A sealed bundle is not rebuilt; a bundle built from other data is refused and never current.
if "$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v1" --data "$WORK/split/train" \
     --quiet 2> "$WORK/ib2.log"; then fail "rebuilt a sealed bundle"; fi
grep -q "already sealed" "$WORK/ib2.log" || fail "no message for a sealed bundle"
if "$IB" --config "$SRC/configs/index_builder.pbtxt" --bundle "$WORK/bundles/v2" --data "$WORK/data" \
     --quiet 2> "$WORK/ib3.log"; then fail "built v2 from data it was not trained on"; fi
grep -q "trained on data up to" "$WORK/ib3.log" || fail "unclear mismatch error: $(cat "$WORK/ib3.log")"
[[ $(readlink "$WORK/bundles/current") == v1 ]] || fail "a refused bundle became current"
# The server starts from current, says where it listens, and exits 0 on
# SIGTERM. Its config names the bundle relative to the config file, and it
# runs from another working directory (/).
SERVER="$BUILD/server/hmrec_server"
mkdir -p "$WORK/etc"
sed -e 's|^bundle_path:.*|bundle_path: "../bundles/current"|' "$SRC/configs/server.pbtxt" > "$WORK/etc/server.pbtxt"
(cd / && exec "$SERVER" --config "$WORK/etc/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0) \
  2> "$WORK/server.log" &
pid=$!
for _ in $(seq 1 100); do grep -q "metrics on http://" "$WORK/server.log" && break; sleep 0.2; done
grep -q "bundle v1, listening on 127.0.0.1:[1-9]" "$WORK/server.log" || { kill $pid; fail "server did not start: $(cat "$WORK/server.log")"; }
# /metrics is served over HTTP and names the bundle.
murl=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$WORK/server.log")
/usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "$murl" > "$WORK/metrics.txt" || { kill $pid; fail "cannot scrape $murl"; }
grep -q '^hmrec_bundle_info{arm="main",version="v1"} 1' "$WORK/metrics.txt" || { kill $pid; fail "no bundle info in /metrics"; }
# SIGHUP makes it look at bundles/current now (unchanged here) and keep serving.
kill -HUP $pid
for _ in $(seq 1 50); do grep -q "still names bundle v1" "$WORK/server.log" && break; sleep 0.1; done
grep -q "still names bundle v1" "$WORK/server.log" || { kill $pid; fail "no reload check on SIGHUP: $(cat "$WORK/server.log")"; }
kill -TERM $pid
wait $pid || fail "server exited non-zero after SIGTERM"
grep -q "server: stopped" "$WORK/server.log" || fail "no clean stop"
# Startup refuses a missing or unsealed bundle with a clear message.
if "$SERVER" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off --bundle "$WORK/nope" 2> "$WORK/s2.log"; then
  fail "started without a bundle"; fi
grep -q "no bundle at" "$WORK/s2.log" || fail "unclear missing-bundle error"
if "$SERVER" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off --bundle "$WORK/bundles/v2" 2> "$WORK/s3.log"; then
  fail "started from an unsealed bundle"; fi
grep -q "not sealed" "$WORK/s3.log" || fail "unclear unsealed-bundle error"
echo "e2e trainer + index builder + server: all checks passed"
