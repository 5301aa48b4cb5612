#!/usr/bin/env bash
# Server start-up and memory at full scale: for each of --runs starts,
# the seconds from exec to "listening" (bundle load and verification), the
# server's RSS once listening, and its RSS (and peak) after a load of two
# concurrent 1000-id callers for --duration seconds. Prints medians as a
# Markdown row.
#
#   bench/server_startup.sh --bundle out/full/bundles/current \
#       --customers out/full/holdout7/train/customers.csv [--runs 3] [--server BUILD/server/hmrec_server]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE="" CUSTOMERS="" RUNS=3 DURATION=10 SERVER="$BUILD/server/hmrec_server" LABEL=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --server) SERVER=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    *) echo "server_startup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "usage: see the header of $0" >&2; exit 2; }
WORK=$(mktemp -d)
PID=""
trap '[[ -n "$PID" ]] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f\n", $2 / 1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.0f\n", $2 / 1024}' "/proc/$1/status"; }
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s.%N)
  "$SERVER" --config "$ROOT/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics off --bundle "$BUNDLE" \
    2> "$WORK/server.log" &
  PID=$!
  until grep -q "listening on" "$WORK/server.log"; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.02
  done
  end=$(date +%s.%N)
  echo "$end - $start" | bc >> "$WORK/load_s"
  rss_mib "$PID" >> "$WORK/rss_idle"
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
  "$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$port" --customers "$CUSTOMERS" --ids_per_request 1000 \
    --concurrency 2 --duration_s "$DURATION" --warmup_s 1 > /dev/null
  rss_mib "$PID" >> "$WORK/rss_load"
  hwm_mib "$PID" >> "$WORK/rss_peak"
  kill -TERM "$PID"; wait "$PID" || true; PID=""
  echo "server_startup: run $run: load $(tail -1 "$WORK/load_s" | cut -c1-5) s, RSS $(tail -1 "$WORK/rss_idle") MiB idle, $(tail -1 "$WORK/rss_load") MiB after load, peak $(tail -1 "$WORK/rss_peak") MiB" >&2
done
echo "| ${LABEL:-$(basename "$SERVER")} | $(median < "$WORK/load_s" | xargs printf '%.2f') | $(median < "$WORK/rss_idle") | $(median < "$WORK/rss_load") | $(median < "$WORK/rss_peak") |"
