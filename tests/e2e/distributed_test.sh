#!/usr/bin/env bash
# End-to-end: the data-parallel trainer, two real hmrec_trainer processes on
# 127.0.0.1 meeting through c10d (TCPStore + ProcessGroupGloo), against one
# process on the same global batch:
#   - the two ranks end with bit-identical parameters (both print the same
#     digest; the trainer itself compares them after every epoch);
#   - the training loss and the holdout MAP@12 equal the single process's.
#     Each rank computes its half of the global batch with every rank's
#     article embeddings as negatives, and the gradients are summed, so the
#     only difference is the order of float sums: losses agree to 1e-4 and
#     MAP@12 to 0.002 (a near-tie in some customer's top 12 may flip);
#   - rank 0 alone exports the bundle (with its ranker);
#   - a rank killed mid-run makes the other fail within seconds, naming the
#     operation; a rank that never comes is named after the timeout;
#     a bad launcher environment and a world size that does not divide the
#     batch are refused; ranks that would start from different epochs are
#     refused.
set -euo pipefail
BUILD=${1:?usage: distributed_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: distributed_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # free_port; fail is redefined below
fail() { echo "FAIL: $*" >&2; for f in "$WORK"/*.log; do echo "== $f" >&2; tail -5 "$f" >&2; done; exit 1; }
TRAINER="$BUILD/trainer/hmrec_trainer"
CFG="$WORK/trainer.pbtxt"


"$BUILD/datagen/hmrec_datagen" --scale tiny --out "$WORK/data" --quiet
"$BUILD/evaluate/hmrec_evaluate" split --data "$WORK/data" --holdout_days 7 --out "$WORK/split" --quiet
{ cat "$SRC/tests/data/trainer_tiny.pbtxt"; echo 'distributed { timeout_seconds: 5 }'; } > "$CFG"
train() {  # train NAME [args...]: one trainer process, logs to NAME.log
  local name=$1; shift
  "$TRAINER" --config "$CFG" --data "$WORK/split/train" --holdout "$WORK/split/truth.csv" --threads 1 "$@" \
    > "$WORK/$name.out" 2> "$WORK/$name.log"
}
# start NAME [args...]: the same in the background; its pid (the trainer's
# own, so that kill reaches it) is appended to PIDS and put in LAST.
start() {
  local name=$1; shift
  exec_train() { exec "$TRAINER" --config "$CFG" --data "$WORK/split/train" --holdout "$WORK/split/truth.csv" \
    --threads 1 "$@"; }
  exec_train "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" &
  LAST=$!
  PIDS+=("$LAST")
}

# One process, the reference.
train single --work_dir "$WORK/w1" --bundles "$WORK/b1" --version v || fail "single-process run failed"

# Two ranks, the same config (batch_size 128 = the global batch).
export MASTER_ADDR=127.0.0.1 WORLD_SIZE=2 GLOO_SOCKET_IFNAME=lo
MASTER_PORT=$(free_port); export MASTER_PORT
RANK=0 start rank0 --work_dir "$WORK/w2" --bundles "$WORK/b2" --version v; P0=$LAST
RANK=1 start rank1 --work_dir "$WORK/w2r1" --bundles "$WORK/b2r1" --version v; P1=$LAST
wait $P0 || fail "rank 0 failed"
wait $P1 || fail "rank 1 failed"
grep -q "all 2 ranks connected" "$WORK/rank0.log" || fail "rank 0 did not report the connection"
[[ "$(cat "$WORK/rank0.out")" == "$WORK/b2/v" ]] || fail "rank 0 should print its bundle path"
[[ ! -s "$WORK/rank1.out" && ! -e "$WORK/b2r1" ]] || fail "rank 1 must not export a bundle"
[[ ! -e "$WORK/w2r1/checkpoints" ]] || fail "rank 1 must not write checkpoints"
for f in manifest.pbtxt customer_tower.pt article_embeddings.bin ranker.ubj; do
  [[ -s "$WORK/b2/v/$f" ]] || fail "rank 0's bundle lacks $f"
done
d0=$(grep -o 'parameters digest [0-9a-f]*' "$WORK/rank0.log" | awk '{print $3}')
d1=$(grep -o 'parameters digest [0-9a-f]*' "$WORK/rank1.log" | awk '{print $3}')
[[ -n "$d0" && "$d0" == "$d1" ]] || fail "ranks' parameters differ: '$d0' vs '$d1'"
grep -q "collectives .* ms/step" "$WORK/rank0.log" || fail "no collective time per step"
/usr/bin/python3 - "$WORK/w1" "$WORK/w2" <<'PY' || fail "the two-rank run does not match the single process"
import json, sys
def losses(d):
    return [float(l.split("\t")[3]) for l in open(d + "/training_loss.tsv")]
def metrics(d):
    return [json.loads(l) for l in open(d + "/training_metrics.jsonl")]
one, two = losses(sys.argv[1]), losses(sys.argv[2])
assert len(one) == len(two) and len(one) >= 4, (len(one), len(two))
for a, b in zip(one, two):
    assert abs(a - b) <= 1e-4, ("loss", a, b)
m1, m2 = metrics(sys.argv[1]), metrics(sys.argv[2])
assert len(m1) == len(m2) == 2
for a, b in zip(m1, m2):
    assert abs(a["map_at_12"] - b["map_at_12"]) <= 0.002, ("MAP@12", a, b)
    assert abs(a["loss"] - b["loss"]) <= 1e-4, ("epoch loss", a, b)
print("two ranks vs one: losses", one[:2], two[:2], "MAP@12", m1[-1]["map_at_12"], m2[-1]["map_at_12"])
PY

# A rank killed mid-run: the other fails at once, naming the operation.
MASTER_PORT=$(free_port); export MASTER_PORT
RANK=0 start kill0 --work_dir "$WORK/w3" --bundles "$WORK/b3" --epochs 100000 --ranking=false; P0=$LAST
RANK=1 start kill1 --work_dir "$WORK/w3r1" --bundles "$WORK/b3r1" --epochs 100000 --ranking=false; P1=$LAST
for _ in $(seq 1 300); do grep -q "^epoch 2:" "$WORK/kill1.log" && break; sleep 0.1; done
grep -q "^epoch 2:" "$WORK/kill1.log" || fail "the ranks did not get going"
kill -9 $P1
killed=$(date +%s%N)
rc=0; wait $P0 || rc=$?
elapsed_ms=$(( ($(date +%s%N) - killed) / 1000000 ))
[[ $rc -ne 0 ]] || fail "rank 0 kept going after rank 1 died"
(( elapsed_ms < 4000 )) || fail "rank 0 took $elapsed_ms ms to notice (its collective timeout is 5 s: it must not wait for it)"
grep -q "failed: another rank stopped or cannot be reached" "$WORK/kill0.log" || fail "no clear message after the kill"

# A rank that never comes is named once the timeout passes.
MASTER_PORT=$(free_port); export MASTER_PORT
rc=0; RANK=0 train alone --work_dir "$WORK/w4" --bundles "$WORK/b4" || rc=$?
[[ $rc -ne 0 ]] || fail "rank 0 trained without rank 1"
grep -q "rank 1 of 2 did not join the rendezvous at 127.0.0.1:$MASTER_PORT within 5 s" "$WORK/alone.log" \
  || fail "the missing rank is not named"

# A bad environment and a world size that does not divide the batch.
rc=0; WORLD_SIZE=2 RANK="" train norank --work_dir "$WORK/w5" --bundles "$WORK/b5" || rc=$?
[[ $rc -ne 0 ]] && grep -q "RANK is not set" "$WORK/norank.log" || fail "missing RANK not named"
rc=0; WORLD_SIZE=3 RANK=0 train three --work_dir "$WORK/w5" --bundles "$WORK/b5" || rc=$?
[[ $rc -ne 0 ]] && grep -q "batch_size 128 (the global batch) is not a multiple of WORLD_SIZE 3" "$WORK/three.log" \
  || fail "indivisible batch not refused"

# Resuming: rank 0 finds the checkpoint, rank 1 (another directory) does not.
MASTER_PORT=$(free_port); export MASTER_PORT
RANK=0 start resume0 --work_dir "$WORK/w2" --bundles "$WORK/b6" --epochs 3 --resume; P0=$LAST
RANK=1 start resume1 --work_dir "$WORK/w6r1" --bundles "$WORK/b6r1" --epochs 3 --resume; P1=$LAST
rc0=0; wait $P0 || rc0=$?
rc1=0; wait $P1 || rc1=$?
[[ $rc0 -ne 0 && $rc1 -ne 0 ]] || fail "ranks resuming from different epochs were not refused"
grep -q "the epoch to start from" "$WORK/resume0.log" || fail "the epoch mismatch is not explained"
echo "distributed trainer: OK"
