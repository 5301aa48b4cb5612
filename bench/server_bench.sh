#!/usr/bin/env bash
# Serving latency and throughput through gRPC, client to client, on one
# machine: starts hmrec_server on a bundle (127.0.0.1), then for each
# scenario runs hmrec_load_bench RUNS times and prints the medians, with the
# server's own per-stage breakdown (from its /metrics, before vs after) and
# its resident memory.
#
#   bench/server_bench.sh --bundle out/full/bundles/current --customers out/full/data/customers.csv \
#       [--runs 3] [--duration 10] [--scenarios "1000x1 1x64"] [--set flat_search=faiss] [--json FILE]
#       [--garment_group NAME] [--similar ARTICLES_CSV [--similar_for_customers]]
#
# A scenario "IDSxCONC" is CONC clients each keeping one call of IDS ids in
# flight; "IDSxCONC@RATE" offers RATE calls a second on a fixed schedule
# instead (open loop: refused calls are not retried, so offered load stays
# at RATE). --set KEY=VALUE overrides one ServerConfig field (repeatable).
# --garment_group NAME: every call filters to that garment group (the cost
# of a narrow filter). --similar ARTICLES_CSV: the scenarios call
# SimilarArticles instead, IDS article ids a call (1: an article's page)
# taken in turn from the file (the bundle's data/articles.csv);
# --similar_for_customers with it: each call names a customer from
# --customers as well (the personalised order).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE=""
CUSTOMERS=""
RUNS=3
DURATION=10
SCENARIOS="1000x1 1x64"
JSON=""
SETS=()
FILTER=()
MODE=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --set) SETS+=("$2"); shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --garment_group) FILTER=(--garment_group "$2"); shift 2 ;;
    --similar) MODE+=(--similar_articles "$2"); shift 2 ;;
    --similar_for_customers) MODE+=(--similar_for_customers); shift ;;
    *) echo "server_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "server_bench.sh: --bundle and --customers are required" >&2; exit 2; }
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cp "$ROOT/configs/server.pbtxt" "$WORK/server.pbtxt"
for kv in "${SETS[@]}"; do
  key=${kv%%=*}; value=${kv#*=}
  sed -i "/^$key:/d" "$WORK/server.pbtxt"
  if [[ "$value" =~ ^-?[0-9]+$ ]]; then echo "$key: $value" >> "$WORK/server.pbtxt"; else echo "$key: \"$value\"" >> "$WORK/server.pbtxt"; fi
done
"$BUILD/server/hmrec_server" --config "$WORK/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$BUNDLE" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do grep -q "metrics on http://" "$WORK/server.log" && break; sleep 0.2; done
grep -q "metrics on http://" "$WORK/server.log" || { cat "$WORK/server.log" >&2; exit 1; }
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/server.log" | grep -o '[0-9]*$')
MURL=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$WORK/server.log")
echo "server_bench: $(grep 'bundle' "$WORK/server.log" | head -1), settings: ${SETS[*]:-defaults}" >&2

scrape() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$MURL"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status"; }

# Warm up: every stage touched, caches filled.
"$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$PORT" --customers "$CUSTOMERS" --ids_per_request 1000 \
  "${FILTER[@]}" --concurrency 2 --duration_s 3 --warmup_s 0 > /dev/null
for scenario in $SCENARIOS; do
  # IDSxCONC, or IDSxCONC@RATE for an open-loop RATE calls/s (refusals not retried).
  base=${scenario%@*}; rate=0
  [[ $scenario == *@* ]] && rate=${scenario#*@}
  ids=${base%x*}; conc=${base#*x}
  for ((r = 0; r < RUNS; ++r)); do
    scrape > "$WORK/before.txt"
    "$BUILD/bench/hmrec_load_bench" --server "127.0.0.1:$PORT" --customers "$CUSTOMERS" --ids_per_request "$ids" \
      "${FILTER[@]}" "${MODE[@]}" --concurrency "$conc" --rate "$rate" --duration_s "$DURATION" --warmup_s 1 \
      > "$WORK/run.json" || true
    scrape > "$WORK/after.txt"
    python3 - "$WORK/before.txt" "$WORK/after.txt" "$WORK/run.json" "$scenario" "$(rss_mib)" >> "$WORK/results.jsonl" <<'PY'
import json, re, sys
def samples(path):
    out = {}
    for line in open(path):
        m = re.match(r'^([a-z_]+(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN|Nan)$', line.strip())
        if m:
            try: out[m.group(1)] = float(m.group(2))
            except ValueError: pass
    return out
b, a = samples(sys.argv[1]), samples(sys.argv[2])
d = lambda k: a.get(k, 0) - b.get(k, 0)
run = json.load(open(sys.argv[3]))
batches = d('hmrec_batch_ids_count')
run['scenario'] = sys.argv[4]
run['server_rss_mib'] = int(sys.argv[5])
run['batches'] = batches
run['mean_batch_ids'] = d('hmrec_batch_ids_sum') / batches if batches else 0
for stage in ('queue_wait', 'feature_lookup', 'tower', 'search', 'candidates', 'ranking_features', 'ranker', 'similar'):
    c = d(f'hmrec_stage_duration_seconds_count{{stage="{stage}"}}')
    run[f'{stage}_ms'] = 1000 * d(f'hmrec_stage_duration_seconds_sum{{stage="{stage}"}}') / c if c else 0
print(json.dumps(run))
PY
    tail -n1 "$WORK/results.jsonl" >&2
  done
done
[[ -n "$JSON" ]] && cp "$WORK/results.jsonl" "$JSON"
python3 - "$WORK/results.jsonl" "$RUNS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"| scenario (ids x clients) | customers/s | p50 ms | p99 ms | failed | of which refused | mean batch | queue wait ms | features ms | tower ms | search ms | candidates ms | ranking features ms | ranker ms | similar ms | server RSS MiB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for sc in dict.fromkeys(r['scenario'] for r in rows):
    rs = [r for r in rows if r['scenario'] == sc]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {sc} (median of {len(rs)}) | {med('customers_per_s'):.0f} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | "
          f"{sum(r['failed'] for r in rs)} | {sum(r['failures'].get('RESOURCE_EXHAUSTED', 0) for r in rs)} | {med('mean_batch_ids'):.0f} | {med('queue_wait_ms'):.2f} | "
          f"{med('feature_lookup_ms'):.2f} | {med('tower_ms'):.2f} | {med('search_ms'):.2f} | {med('candidates_ms'):.2f} | "
          f"{med('ranking_features_ms'):.2f} | {med('ranker_ms'):.2f} | {med('similar_ms'):.2f} | {max(r['server_rss_mib'] for r in rs)} |")
PY
