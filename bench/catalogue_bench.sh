#!/usr/bin/env bash
# How serving grows with the catalogue (docs/SCALING.md): for each scale M,
# a catalogue M times the bundle's (hmrec_scale_catalogue: real articles plus
# synthetic neighbours), made servable by the real index builder (timed),
# then served by the real server (retrieval only: the ranker's tables describe
# the real catalogue) and measured with server_bench.sh: 1000-id p50/p99,
# the search stage and the server's RSS.
#
#   bench/catalogue_bench.sh --bundle out/full/bundles/current --data out/full/holdout7/train \
#       [--scales "1 2 4 8"] [--runs 3] [--duration 8] [--work /tmp/catalogues] [--json FILE]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE=""
DATA=""
SCALES="1 2 4 8"
RUNS=3
DURATION=8
WORK=/tmp/hmrec-catalogues
JSON=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --scales) SCALES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    *) echo "catalogue_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$DATA" ]] || { echo "catalogue_bench.sh: --bundle and --data are required" >&2; exit 2; }
echo "| articles | x | bundle build s (index builder, whole) | 1000-id p50 ms | p99 ms | search ms | server RSS MiB |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for m in $SCALES; do
  out="$WORK/x$m"
  rm -rf "$out"
  "$BUILD/bench/hmrec_scale_catalogue" --bundle "$BUNDLE" --data "$DATA" --scale "$m" --out "$out" > /dev/null
  start=$(date +%s.%N)
  "$BUILD/index_builder/hmrec_index_builder" --config "$ROOT/configs/index_builder.pbtxt" \
    --bundle "$out/bundles/v1" --data "$out/data" --quiet 2> "$out/index_builder.log"
  build_s=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  bash "$ROOT/bench/server_bench.sh" --bundle "$out/bundles/current" --customers "$DATA/customers.csv" \
    --runs "$RUNS" --duration "$DURATION" --scenarios "1000x1" --json "$out/serve.jsonl" > "$out/serve.md" 2> "$out/serve.log"
  python3 - "$out/serve.jsonl" "$m" "$build_s" "$(grep -o 'over [0-9]* articles' "$out/index_builder.log" | grep -o '[0-9]*')" \
    "${JSON:-/dev/null}" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
m, build, articles = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
med = lambda k: statistics.median(r[k] for r in rows)
rss = max(r["server_rss_mib"] for r in rows)
print(f"| {articles} | {m} | {build} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {med('search_ms'):.2f} | {rss} |")
with open(sys.argv[5], "a") as f:
    f.write(json.dumps({"scale": m, "articles": articles, "build_s": build, "p50_ms": med("p50_ms"),
                        "p99_ms": med("p99_ms"), "search_ms": med("search_ms"), "server_rss_mib": rss,
                        "runs": len(rows)}) + "\n")
PY
  rm -rf "$out"
done
