#!/usr/bin/env bash
# Deployment checks, offline: YAML lint; the kustomize renderings of deploy/k8s
# and deploy/k8s/jobs validated object by object against the Kubernetes (and
# prometheus-operator) schemas; # The Indexed Jobs agree with themselves: WORLD_SIZE / PARTS = completions =
# parallelism, the rank comes from the completion index, rank 0's address is
# the headless Service's pod 0, and the global batch divides by the ranks.
kubectl kustomize "$D/k8s/jobs" > "$WORK/jobs.yaml"
/usr/bin/python3 - "$WORK/jobs.yaml" "$SRC/configs/trainer.pbtxt" <<'PY' || fail "Indexed Job consistency"
import re, sys, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
batch = int(re.search(r"^batch_size:\s*(\d+)", open(sys.argv[2]).read(), re.M).group(1))
def env(job):
    c = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in c.get("env", [])}
index = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
for name, var in (("hmrec-train", "WORLD_SIZE"), ("hmrec-submission", "PARTS")):
    job = docs[("Job", name)]
    spec, e = job["spec"], env(job)
    assert spec["completionMode"] == "Indexed", name
    n = int(e[var]["value"])
    assert spec["completions"] == spec["parallelism"] == n, (name, spec["completions"], spec["parallelism"], n)
    who = "RANK" if name == "hmrec-train" else "PART"
    assert e[who]["valueFrom"]["fieldRef"]["fieldPath"] == index, (name, who)
train, e = docs[("Job", "hmrec-train")], env(docs[("Job", "hmrec-train")])
svc = docs[("Service", "hmrec-train")]
assert svc["spec"]["clusterIP"] == "None"
assert train["spec"]["template"]["spec"]["subdomain"] == svc["metadata"]["name"]
assert e["MASTER_ADDR"]["value"] == "hmrec-train-0." + svc["metadata"]["name"], e["MASTER_ADDR"]
assert int(e["MASTER_PORT"]["value"]) == svc["spec"]["ports"][0]["port"]
assert svc["spec"]["selector"] == {"job-name": "hmrec-train"}
assert batch % int(e["WORLD_SIZE"]["value"]) == 0, "batch_size must divide by WORLD_SIZE"
print("indexed jobs: consistent")
PY

promtool check config / check rules / test
# rules; the Grafana dashboard parses and every metric its queries name is one
# a real server exports; and a real Prometheus scraping a real hmrec_server on
# 127.0.0.1 answers a latency quantile (raw and through the recording rules)
# over its HTTP query API.
set -euo pipefail
BUILD=${1:?usage: deploy_test.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: deploy_test.sh BUILD_DIR SOURCE_DIR}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
D="$SRC/deploy"

yamllint -s -c "$D/.yamllint" "$D" || fail "yamllint"

for dir in k8s k8s/jobs; do
  kubectl kustomize "$D/$dir" > "$WORK/rendered.yaml" || fail "kubectl kustomize deploy/$dir"
  node "$D/validate/validate.mjs" "$WORK/rendered.yaml" > "$WORK/validate.log" \
    || { cat "$WORK/validate.log" >&2; fail "schema validation of deploy/$dir"; }
  tail -n1 "$WORK/validate.log"
  cat "$WORK/validate.log" >> "$WORK/validated.log"
done
for obj in Deployment/hmrec-server Service/hmrec-server-headless HorizontalPodAutoscaler/hmrec-server \
    PodDisruptionBudget/hmrec-server ServiceMonitor/hmrec-server Job/hmrec-train Service/hmrec-train Job/hmrec-submission \
    StatefulSet/hmrec-redis Service/hmrec-redis; do
  grep -q "^ok   $obj " "$WORK/validated.log" || fail "$obj was not rendered and validated"
done

promtool check config "$D/prometheus/prometheus.yml" > /dev/null || fail "promtool check config"
promtool check rules "$D/prometheus/rules/hmrec.rules.yml" > /dev/null || fail "promtool check rules"
(cd "$D/prometheus/tests" && promtool test rules hmrec.rules.test.yml) || fail "promtool test rules"

# A real server on a tiny bundle, with some traffic (ok, fallback, a bad call).
make_tiny_bundle "$BUILD" "$SRC" "$WORK"
start_server "$WORK/server.log" --config "$SRC/configs/server.pbtxt" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --bundle "$WORK/bundles/current"
PIDS+=("$PID")
MADDR=$(echo "$MURL" | sed 's|http://||; s|/metrics||')
LOAD="$BUILD/bench/hmrec_load_bench"
"$LOAD" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" --ids_per_request 10 --concurrency 2 \
  --duration_s 1 --warmup_s 0 > /dev/null
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$(printf 'f%.0s' $(seq 1 64))" > /dev/null
"$BUILD/client/hmrec_client" --server "127.0.0.1:$PORT" --customer-id "$(printf 'A%.0s' $(seq 1 64))" \
  > /dev/null 2>&1 && fail "a malformed id was accepted"

# Every metric the dashboard's queries name is exported by the server.
/usr/bin/python3 - "$D/grafana/dashboards/hmrec.json" "http://$MADDR/metrics" <<'PY' || fail "dashboard check"
import json, re, sys, urllib.request
dash = json.load(open(sys.argv[1]))
exported = set(re.findall(r"^# TYPE (\S+) ", urllib.request.urlopen(sys.argv[2], timeout=10).read().decode(), re.M))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "no queries in the dashboard"
named = set()
for e in exprs:
    for m in re.findall(r"\b(hmrec_[a-z_]+)", e):
        family = re.sub(r"_(bucket|sum|count)$", "", m)  # a histogram's series name its family
        named.add(family if family in exported else m)
missing = sorted(named - exported)
assert not missing, f"dashboard names metrics the server does not export: {missing}"
print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} queries, metrics all exported: {sorted(named)}")
PY

# A real Prometheus scrapes it every second and evaluates the real rules.
PPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $D/prometheus/rules/hmrec.rules.yml
scrape_configs:
  - job_name: hmrec-server
    static_configs:
      - targets: ["$MADDR"]
EOF
promtool check config "$WORK/prometheus.yml" > /dev/null || fail "test prometheus config"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" > "$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PPORT/-/ready', timeout=2)" \
    2> /dev/null && break
  sleep 0.2
done
"$LOAD" --server "127.0.0.1:$PORT" --customers "$WORK/data/customers.csv" --ids_per_request 20 --concurrency 4 \
  --duration_s 6 --warmup_s 0 > "$WORK/load.json" || fail "load failed: $(cat "$WORK/load.json")"
/usr/bin/python3 - "http://127.0.0.1:$PPORT" <<'PY' || { tail -20 "$WORK/prometheus.log" >&2; fail "Prometheus query"; }
import json, math, sys, time, urllib.parse, urllib.request
base = sys.argv[1]
def query(q):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    r = json.load(urllib.request.urlopen(url, timeout=10))
    assert r["status"] == "success", r
    return r["data"]["result"]
raw = 'histogram_quantile(0.99, sum by (le) (rate(hmrec_request_duration_seconds_bucket{method="Recommend"}[30s])))'
rule = 'method:hmrec_request_duration_seconds:p99_5m{method="Recommend"}'
deadline = time.time() + 60
while True:
    a, b = query(raw), query(rule)
    ok = lambda res: res and not math.isnan(float(res[0]["value"][1])) and float(res[0]["value"][1]) > 0
    if ok(a) and ok(b):
        break
    assert time.time() < deadline, f"no latency quantile from Prometheus: raw={a} rule={b}"
    time.sleep(1)
up = query('up{job="hmrec-server"}')
assert up and up[0]["value"][1] == "1", up
print(f"prometheus: p99 Recommend latency {float(a[0]['value'][1]) * 1000:.1f} ms (raw), "
      f"{float(b[0]['value'][1]) * 1000:.1f} ms (recording rule)")
PY
echo "e2e deploy: all checks passed"
