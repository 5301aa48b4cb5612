#!/usr/bin/env bash
# The HTTP library comparison (docs/PERFORMANCE.md "HTTP library"): the real
# server's HTTP/JSON API served by libmicrohttpd (the server's own port),
# Boost.Beast and cpp-httplib at once (bench/http_compare.cc), over TLS with
# an API key. For each library, RUNS runs of wrk with CONNECTIONS keep-alive
# connections posting single-customer /v1/recommend calls (customers taken
# in turn from the list) give requests/s and p99 (medians printed); then the
# bounds probes of bench/http_probe.py: slow clients vs /healthz, a 64 KiB
# header, a 100 MB Content-Length, an idle connection.
#
#   bench/http_compare.sh --bundle out/small/bundles/current --customers out/small/data/customers.csv \
#       [--runs 3] [--duration 10] [--connections 64] [--plain] [--json FILE]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
BUNDLE="" CUSTOMERS="" RUNS=3 DURATION=10 CONNECTIONS=64 PLAIN=0 JSON=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE=$2; shift 2 ;;
    --customers) CUSTOMERS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --plain) PLAIN=1; shift ;;
    --json) JSON=$2; shift 2 ;;
    *) echo "http_compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BUNDLE" && -n "$CUSTOMERS" ]] || { echo "http_compare.sh: --bundle and --customers are required" >&2; exit 2; }
command -v wrk > /dev/null || { echo "http_compare.sh: wrk is missing (deploy/install_deps.sh)" >&2; exit 2; }
WORK=$(mktemp -d)
PID=""
cleanup() {
  [[ -n "$PID" ]] && kill -TERM "$PID" 2> /dev/null && wait "$PID" 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A certificate for 127.0.0.1 (self-signed CA) and an API key.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$WORK/ca.key" 2> /dev/null
openssl req -x509 -new -key "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 -subj "/CN=bench-ca" 2> /dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$WORK/server.key" 2> /dev/null
openssl req -new -key "$WORK/server.key" -out "$WORK/server.csr" -subj "/CN=server" 2> /dev/null
echo "subjectAltName=IP:127.0.0.1" > "$WORK/ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/server.pem" -days 2 -extfile "$WORK/ext" 2> /dev/null
bash "$ROOT/scripts/make_api_key.sh" bench recommend "$WORK/key" "$WORK/keys" 2> /dev/null

TLS_ARGS=(--tls_cert "$WORK/server.pem" --tls_key "$WORK/server.key")
SCHEME=https
if ((PLAIN)); then TLS_ARGS=(); SCHEME=http; fi
"$BUILD/bench/hmrec_http_compare" --config "$ROOT/configs/server.pbtxt" --bundle "$BUNDLE" \
  --keys_file "$WORK/keys" "${TLS_ARGS[@]}" > "$WORK/ports" 2> "$WORK/server.log" &
PID=$!
for _ in $(seq 1 300); do [[ $(wc -l < "$WORK/ports") -ge 3 ]] && break; sleep 0.2; done
[[ $(wc -l < "$WORK/ports") -ge 3 ]] || { cat "$WORK/server.log" >&2; exit 1; }

# wrk: single-customer calls, customers in turn, the key on every call.
{
  echo "local ids = {"
  sed -n '2,2001p' "$CUSTOMERS" | cut -d, -f1 | sed 's/.*/"&",/'
  echo "}"
  cat << EOF
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $(cat "$WORK/key")"
request = function()
  n = n % #ids + 1
  return wrk.format(nil, nil, nil, '{"customer_ids": ["' .. ids[n] .. '"]}')
end
EOF
} > "$WORK/post.lua"

echo "http_compare: $SCHEME, $CONNECTIONS keep-alive connections, ${DURATION}s x $RUNS runs, CPU: $(lscpu | sed -n 's/^Model name: *//p')" >&2
RESULTS="$WORK/results.txt"
: > "$RESULTS"
while read -r lib port; do
  url="$SCHEME://127.0.0.1:$port/v1/recommend"
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/post.lua" "$url" > /dev/null  # warm-up
  for run in $(seq 1 "$RUNS"); do
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -s "$WORK/post.lua" "$url" > "$WORK/wrk.txt"
    rps=$(sed -n 's/^Requests\/sec: *//p' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")
    p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
    bad=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' "$WORK/wrk.txt")
    errors=$(sed -n 's/.*Socket errors: *//p' "$WORK/wrk.txt")
    echo "$lib $run $rps $p50 $p99 ${bad:-0} ${errors:-none}" | tee -a "$RESULTS" >&2
  done
done < "$WORK/ports"

/usr/bin/python3 "$ROOT/bench/http_probe.py" "$WORK/ports" "$SCHEME" "$WORK/ca.pem" "$WORK/key" > "$WORK/probes.json"
/usr/bin/python3 - "$RESULTS" "$WORK/probes.json" "$SCHEME" "$CONNECTIONS" "${JSON:-/dev/null}" << 'PY'
import json, statistics, sys
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000 if v.endswith("s") else float(v[:-2]) / 1000
rows = {}
for line in open(sys.argv[1]):
    lib, run, rps, p50, p99, bad, *_ = line.split()
    rows.setdefault(lib, []).append((float(rps), ms(p50), ms(p99), int(bad)))
probes = json.load(open(sys.argv[2]))
out = {"scheme": sys.argv[3], "connections": int(sys.argv[4]), "libraries": {}}
print(f"| library | requests/s (median) | p50 ms | p99 ms | non-2xx | slow clients: /healthz | 64 KiB header | 100 MB body | idle closed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for lib, r in rows.items():
    med = lambda i: statistics.median(x[i] for x in r)
    p = probes[lib]
    out["libraries"][lib] = {"rps": [x[0] for x in r], "p50_ms": [x[1] for x in r], "p99_ms": [x[2] for x in r],
                             "non_2xx": sum(x[3] for x in r), "probes": p}
    print(f"| {lib} | {med(0):,.0f} | {med(1):.1f} | {med(2):.1f} | {sum(x[3] for x in r)} | {p['slow_clients']} | "
          f"{p['big_header']} | {p['huge_body']} | {p['idle']} |")
json.dump(out, open(sys.argv[5], "w"), indent=1)
PY
