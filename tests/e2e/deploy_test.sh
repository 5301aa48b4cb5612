#!/usr/bin/env bash
# Deployment checks, offline: YAML lint; the kustomize renderings of deploy/k8s
# and deploy/k8s/jobs validated object by object against the Kubernetes (and
# prometheus-operator) schemas, with the Secrets deploy/k8s/make_secrets.sh
# makes; the security wiring (Secrets, mounts, TLS probes, NetworkPolicies)
# and Redis 7 taking the manifest's arguments and password; the Indexed Jobs
# agree with themselves: WORLD_SIZE / PARTS = completions = parallelism, the
# rank comes from the completion index, rank 0's address is the headless
# Service's pod 0, and the global batch divides by the ranks (the nightly
# retrain CronJob's ranks too, with flags its script takes); promtool check
# config / check rules / test rules; the Grafana dashboard parses and every metric its queries name is one
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

# The Secrets the manifests mount, as deploy/k8s/make_secrets.sh makes them.
bash "$D/k8s/make_secrets.sh" "$WORK/secrets" > "$WORK/secrets.yaml" 2> /dev/null || fail "make_secrets.sh"
for dir in k8s k8s/jobs; do
  kubectl kustomize "$D/$dir" > "$WORK/rendered-${dir//\//-}.yaml" || fail "kubectl kustomize deploy/$dir"
  node "$D/validate/validate.mjs" "$WORK/rendered-${dir//\//-}.yaml" > "$WORK/validate.log" \
    || { cat "$WORK/validate.log" >&2; fail "schema validation of deploy/$dir"; }
  tail -n1 "$WORK/validate.log"
  cat "$WORK/validate.log" >> "$WORK/validated.log"
done
node "$D/validate/validate.mjs" "$WORK/secrets.yaml" >> "$WORK/validated.log" || fail "schema validation of the Secrets"
for obj in Deployment/hmrec-server Service/hmrec-server-headless HorizontalPodAutoscaler/hmrec-server \
    PodDisruptionBudget/hmrec-server ServiceMonitor/hmrec-server Job/hmrec-train Service/hmrec-train Job/hmrec-submission \
    CronJob/hmrec-retrain Service/hmrec-retrain \
    StatefulSet/hmrec-redis Service/hmrec-redis NetworkPolicy/hmrec-default-deny-ingress NetworkPolicy/hmrec-redis \
    NetworkPolicy/hmrec-server NetworkPolicy/hmrec-train Secret/hmrec-api-keys Secret/hmrec-tls Secret/hmrec-redis \
    Secret/hmrec-key-submission; do
  grep -q "^ok   $obj " "$WORK/validated.log" || fail "$obj was not rendered and validated"
done

# Security wiring: every Secret a pod or the ServiceMonitor names exists with
# the keys it reads; the server config wants keys, TLS and the Redis password
# at the paths where the Deployment mounts them; Redis takes requirepass from
# its Secret and admits only the server and training pods; the server admits
# only the ports it serves.
/usr/bin/python3 - "$WORK/rendered-k8s.yaml" "$WORK/rendered-k8s-jobs.yaml" "$WORK/secrets.yaml" \
  "$D/k8s/server.pbtxt" << 'PY' || fail "security wiring of the manifests"
import re, sys, yaml
objs = [d for f in sys.argv[1:3] for d in yaml.safe_load_all(open(f)) if d]
secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(sys.argv[3])) if d}
by = {(d["kind"], d["metadata"]["name"]): d for d in objs}
config = open(sys.argv[4]).read()
used = []
def need(name, key=None):
    assert name in secrets, f"Secret {name} is not made by make_secrets.sh"
    assert key is None or key in secrets[name]["data"], f"Secret {name} has no key {key}"
    used.append(name)
def pod(kind, name):
    return by[(kind, name)]["spec"]["template"]["spec"]
for (kind, name), d in by.items():
    if kind not in ("Deployment", "StatefulSet", "Job"):
        continue
    spec = pod(kind, name)
    for v in spec.get("volumes", []):
        if "secret" in v:
            need(v["secret"]["secretName"])
            for item in v["secret"].get("items", []):
                need(v["secret"]["secretName"], item["key"])
    for c in spec["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                need(ref["name"], ref["key"])
sm = by[("ServiceMonitor", "hmrec-server")]["spec"]["endpoints"][0]
assert sm["scheme"] == "https", sm
need(sm["tlsConfig"]["ca"]["secret"]["name"], sm["tlsConfig"]["ca"]["secret"]["key"])
# The server config: auth, TLS, Redis password, at the mounted paths.
server = pod("Deployment", "hmrec-server")
mounts = {m["name"]: m["mountPath"] for m in server["containers"][0]["volumeMounts"]}
volumes = {v["name"]: v for v in server["volumes"]}
def mounted(path):
    for name, at in mounts.items():
        if path.startswith(at + "/"):
            v = volumes[name]
            rest = path[len(at) + 1:]
            if "secret" in v:
                items = v["secret"].get("items")
                keys = [i["path"] for i in items] if items else list(secrets[v["secret"]["secretName"]]["data"])
                assert rest in keys, f"{path}: Secret {v['secret']['secretName']} has no {rest}"
            return name
    raise AssertionError(f"{path} is mounted from nowhere")
keys_file = re.search(r'auth \{ keys_file: "([^"]+)"', config).group(1)
assert mounted(keys_file) == "api-keys"
cert, key = re.search(r'tls \{ cert_file: "([^"]+)" key_file: "([^"]+)"', config).groups()
assert mounted(cert) == mounted(key) == "tls"
assert mounted(re.search(r'redis_password_file: "([^"]+)"', config).group(1)) == "redis-password"
assert "/etc/hmrec/config/server.pbtxt" in server["containers"][0]["args"], server["containers"][0]["args"]
assert mounts["config"] == "/etc/hmrec/config"
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    assert server["containers"][0][probe]["httpGet"]["scheme"] == "HTTPS", probe
# Redis: requirepass from the Secret; only the server and training pods.
redis = pod("StatefulSet", "hmrec-redis")["containers"][0]
assert "--include" in redis["args"] and "/etc/redis-auth/auth.conf" in redis["args"], redis["args"]
assert secrets["hmrec-redis"]["data"]["auth.conf"]
pol = by[("NetworkPolicy", "hmrec-redis")]["spec"]
allowed = sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in pol["ingress"][0]["from"])
assert allowed == ["hmrec-server", "hmrec-train"], allowed
assert [p["port"] for p in pol["ingress"][0]["ports"]] == [6379]
assert by[("NetworkPolicy", "hmrec-default-deny-ingress")]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
served = sorted(p["containerPort"] for p in server["containers"][0]["ports"])
pol = by[("NetworkPolicy", "hmrec-server")]["spec"]
assert sorted(p["port"] for p in pol["ingress"][0]["ports"]) == served and "from" not in pol["ingress"][0], pol
# The submission Job calls with its key over TLS.
sub = pod("Job", "hmrec-submission")["containers"][0]["args"][0]
assert "--api_key_file /etc/hmrec/key/key" in sub and "--tls_ca /etc/hmrec/tls/ca.crt" in sub, sub
print(f"security wiring: {len(set(used))} Secrets mounted as made, keys/TLS/Redis password at their mounts, "
      "Redis admits server and training pods only")
PY

# Redis 7 (Debian's, as the image's) takes the manifest's arguments and the
# Secret's auth.conf: a client with REDISCLI_AUTH gets PONG, one without NOAUTH.
RPORT=$(free_port)
mkdir -p "$WORK/redis-data"
/usr/bin/python3 - "$WORK/rendered-k8s.yaml" > "$WORK/redis-args" << 'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "StatefulSet" and d["metadata"]["name"] == "hmrec-redis":
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"][1:]))
PY
mapfile -t RARGS < "$WORK/redis-args"
RARGS=("${RARGS[@]//\/data/$WORK/redis-data}")
RARGS=("${RARGS[@]//\/etc\/redis-auth\/auth.conf/$WORK/secrets/redis_auth.conf}")
redis-server "${RARGS[@]}" --port "$RPORT" --bind 127.0.0.1 --daemonize no --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping > /dev/null 2>&1 && break; sleep 0.1; done
[[ $(REDISCLI_AUTH=$(cat "$WORK/secrets/redis_password") redis-cli -p "$RPORT" ping) == PONG ]] \
  || fail "Redis with the manifest's arguments refuses the Secret's password: $(cat "$WORK/redis.log")"
redis-cli -p "$RPORT" ping 2>&1 | grep -q NOAUTH || fail "Redis answers without the password"

kubectl kustomize "$D/k8s/jobs" > "$WORK/jobs.yaml"
/usr/bin/python3 - "$WORK/jobs.yaml" "$SRC/configs/trainer.pbtxt" "$SRC/scripts/hmrec_retrain.sh" <<'PY' \
  || fail "Indexed Job consistency"
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
# The nightly retrain: the same Indexed ranks inside a CronJob, one run at a
# time; rank 0 found through its own headless Service under the run's Job
# name; every flag it passes is one hmrec_retrain takes.
cron = docs[("CronJob", "hmrec-retrain")]
assert cron["spec"]["concurrencyPolicy"] == "Forbid"
jt = cron["spec"]["jobTemplate"]["spec"]
pod = jt["template"]
c = pod["spec"]["containers"][0]
e = {x["name"]: x for x in c["env"]}
order = [x["name"] for x in c["env"]]
n = int(e["WORLD_SIZE"]["value"])
assert jt["completionMode"] == "Indexed" and jt["completions"] == jt["parallelism"] == n, jt
assert e["RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == index
assert e["JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['job-name']"
rsvc = docs[("Service", "hmrec-retrain")]
assert rsvc["spec"]["clusterIP"] == "None" and pod["spec"]["subdomain"] == rsvc["metadata"]["name"]
assert all(pod["metadata"]["labels"].get(k) == v for k, v in rsvc["spec"]["selector"].items())
assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "hmrec-train", "the training NetworkPolicy"
assert e["MASTER_ADDR"]["value"] == "$(JOB_NAME)-0." + rsvc["metadata"]["name"], e["MASTER_ADDR"]
assert e["HMREC_RUN_ID"]["value"] == "$(JOB_NAME)"
assert order.index("JOB_NAME") < min(order.index("MASTER_ADDR"), order.index("HMREC_RUN_ID")), order
assert int(e["MASTER_PORT"]["value"]) == rsvc["spec"]["ports"][0]["port"]
assert batch % n == 0, "batch_size must divide by WORLD_SIZE"
script = open(sys.argv[3]).read()
args = c["args"]
for a in args[:args.index("--")]:
    flag = a.split("=")[0]
    assert re.search(r"^\s+" + re.escape(flag) + r"\)", script, re.M), f"hmrec_retrain takes no {flag}"
mounts = {m["mountPath"] for m in c["volumeMounts"]}
pw = [a for a in args if a.startswith("--redis_password_file=")][0].split("=", 1)[1]
assert any(pw.startswith(m + "/") for m in mounts), (pw, mounts)
print("indexed jobs: consistent")
PY


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
