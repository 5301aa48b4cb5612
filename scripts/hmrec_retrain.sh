#!/usr/bin/env bash
# hmrec_retrain: the nightly retrain job (deploy/k8s/jobs/retrain-cronjob.yaml
# runs it; installed in the image as /opt/hmrec/bin/hmrec_retrain).
#
#   hmrec_retrain --data DIR --work DIR --bundles DIR
#       [--events_backend rocksdb --events_path DIR | --events_backend redis --redis_address HOST:PORT
#        [--redis_password_file F] | --events_backend off]
#       [--holdout_days 7] [--max_drop 0.02] [--run ID] [--bin DIR] [--configs DIR] [-- TRAINER FLAGS...]
#
# Export -> split -> train -> build -> gate:
#   1. the purchases recorded online and the erasure list, from the event
#      store (`hmrec_events export`, `hmrec_events erasures`);
#   2. the base files plus the export split into training data and the last
#      --holdout_days days held out (erased customers left out of both:
#      `hmrec_evaluate split --extra_transactions --erasures`);
#   3. the two towers and the ranker trained on the training part
#      (`hmrec_trainer --extra_transactions --erasures`, evaluated on the
#      held-out days), the bundle built without switching `current`
#      (`hmrec_index_builder --no_promote`);
#   4. `hmrec_gate` scores it beside the current bundle on the held-out days
#      and promotes it, or refuses it with WORK/RUN/gate.json; the job's exit
#      code is the gate's (1: refused, current unchanged).
# So every bundle this job promotes ends --holdout_days before the data: the
# next night's held-out days are unseen by both bundles the gate compares, and
# the servers apply the purchases recorded since (the event store's horizon,
# 28 days, covers them).
#
# Every rank of the Indexed Job runs this (RANK and WORLD_SIZE from the
# environment; 0 and 1 without): rank 0 prepares the data and writes
# WORK/RUN/ready, the others wait for it (the work directory is on the shared
# volume), all train together, rank 0 builds and gates. RUN (--run, default
# $HMREC_RUN_ID, else the date and time) names the work directory and the
# bundle version ("nightly-RUN"): the ranks of one run must share it.
set -euo pipefail

DATA="" WORK="" BUNDLES="" BACKEND=off EVENTS_PATH="" REDIS="" REDIS_PASSWORD_FILE=""
HOLDOUT=7 MAX_DROP=0.02 RUN=${HMREC_RUN_ID:-} BIN="" CONFIGS=""
TRAINER_EXTRA=()
while [[ $# -gt 0 ]]; do
  # --flag=value as well as --flag value (up to the trainer's flags).
  if [[ "$1" == --?*=* ]]; then set -- "${1%%=*}" "${1#*=}" "${@:2}"; fi
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --bundles) BUNDLES=$2; shift 2 ;;
    --events_backend) BACKEND=$2; shift 2 ;;
    --events_path) EVENTS_PATH=$2; shift 2 ;;
    --redis_address) REDIS=$2; shift 2 ;;
    --redis_password_file) REDIS_PASSWORD_FILE=$2; shift 2 ;;
    --holdout_days) HOLDOUT=$2; shift 2 ;;
    --max_drop) MAX_DROP=$2; shift 2 ;;
    --run) RUN=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --) shift; TRAINER_EXTRA=("$@"); break ;;
    *) echo "retrain: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
fail() { echo "retrain: $*" >&2; exit 1; }
[[ -n "$DATA" && -n "$WORK" && -n "$BUNDLES" ]] || { echo "retrain: --data, --work and --bundles are required" >&2; exit 2; }
[[ "$HOLDOUT" =~ ^[1-9][0-9]*$ ]] || { echo "retrain: --holdout_days must be a positive number, not '$HOLDOUT'" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# In the image the programs sit beside this script; in a source tree, in build/.
if [[ -z "$BIN" ]]; then
  if [[ -x "$HERE/hmrec_trainer" ]]; then BIN=$HERE; else BIN=$HERE/../build; fi
fi
prog() {  # prog NAME: the program's path (flat in the image, per module in build/)
  local name=$1
  for p in "$BIN/$name" "$BIN/${name#hmrec_}/$name" "$BIN/events/$name" "$BIN/index_builder/$name"; do
    [[ -x "$p" ]] && { echo "$p"; return; }
  done
  fail "cannot find $name under $BIN (--bin)"
}
if [[ -z "$CONFIGS" ]]; then
  if [[ -d "$HERE/../configs" ]]; then CONFIGS=$HERE/../configs; else CONFIGS=/opt/hmrec/configs; fi
fi
RANK=${RANK:-0}
WORLD_SIZE=${WORLD_SIZE:-1}
RUN=${RUN:-$(date -u +%Y%m%d-%H%M%S)}
[[ "$RUN" =~ ^[A-Za-z0-9._-]+$ ]] || fail "--run '$RUN': letters, digits, . _ - only"
R="$WORK/$RUN"
VERSION="nightly-$RUN"
SPLIT="$R/split"

events_flags=()
case "$BACKEND" in
  rocksdb) [[ -n "$EVENTS_PATH" ]] || fail "--events_backend rocksdb needs --events_path"
           events_flags=(--backend rocksdb --path "$EVENTS_PATH") ;;
  redis) [[ -n "$REDIS" ]] || fail "--events_backend redis needs --redis_address"
         events_flags=(--backend redis --redis_address "$REDIS")
         [[ -z "$REDIS_PASSWORD_FILE" ]] || events_flags+=(--redis_password_file "$REDIS_PASSWORD_FILE") ;;
  off) ;;
  *) fail "--events_backend must be rocksdb, redis or off, not '$BACKEND'" ;;
esac

step() { echo "retrain: [$RUN rank $RANK] $*" >&2; }

if [[ "$RANK" == 0 ]]; then
  mkdir -p "$R"
  rm -f "$R/ready"
  split_flags=()
  if [[ "$BACKEND" != off ]]; then
    step "exporting recorded purchases and the erasure list from the $BACKEND event store"
    "$(prog hmrec_events)" export "${events_flags[@]}" --out "$R/extra.csv" || fail "hmrec_events export"
    "$(prog hmrec_events)" erasures "${events_flags[@]}" --out "$R/erasures.csv" || fail "hmrec_events erasures"
    split_flags=(--extra_transactions "$R/extra.csv" --erasures "$R/erasures.csv")
  fi
  step "holding out the last $HOLDOUT days"
  "$(prog hmrec_evaluate)" split --data "$DATA" --holdout_days "$HOLDOUT" --out "$SPLIT" --quiet "${split_flags[@]}" \
    || fail "hmrec_evaluate split"
  touch "$R/ready"
else
  step "waiting for rank 0 to prepare $R"
  for _ in $(seq 1 3600); do [[ -f "$R/ready" ]] && break; sleep 1; done
  [[ -f "$R/ready" ]] || fail "rank 0 did not prepare $R within an hour"
fi

train_flags=()
if [[ "$BACKEND" != off ]]; then
  train_flags=(--extra_transactions "$SPLIT/train/extra_transactions.csv" --erasures "$R/erasures.csv")
fi
step "training $VERSION"
"$(prog hmrec_trainer)" --config "$CONFIGS/trainer.pbtxt" --data "$SPLIT/train" "${train_flags[@]}" \
  --holdout "$SPLIT/truth.csv" --work_dir "$R/train" --bundles "$BUNDLES" --version "$VERSION" \
  "${TRAINER_EXTRA[@]}" > "$R/bundle_path" || fail "hmrec_trainer"
[[ "$RANK" == 0 ]] || { step "done (rank 0 builds and gates)"; exit 0; }

step "building $VERSION (current unchanged)"
"$(prog hmrec_index_builder)" --config "$CONFIGS/index_builder.pbtxt" --bundle "$BUNDLES/$VERSION" \
  --data "$SPLIT/train" "${train_flags[@]}" --no_promote --quiet || fail "hmrec_index_builder"
step "gating $VERSION against current on the held-out days"
set +e
"$(prog hmrec_gate)" --bundles "$BUNDLES" --candidate "$VERSION" --holdout "$SPLIT/truth.csv" --max_drop "$MAX_DROP" \
  --report "$R/gate.json"
rc=$?
set -e
[[ $rc == 0 ]] && step "$VERSION promoted" || step "$VERSION refused (exit $rc): $R/gate.json"
exit $rc
