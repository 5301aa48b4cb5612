"""Canary traffic against two real hmrec_server replicas (tests/e2e/canary_test.sh).

    canary_test.py WORK BUILD GRPC_A GRPC_B HTTP_A METRICS_A
"""
import csv
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

WORK, BUILD, GRPC_A, GRPC_B, HTTP_A, METRICS_A = sys.argv[1:7]
sys.path.insert(0, os.path.join(WORK, "py"))
import grpc  # noqa: E402
import recommender_pb2 as pb  # noqa: E402
import recommender_pb2_grpc as rpc  # noqa: E402

a = rpc.RecommenderStub(grpc.insecure_channel(GRPC_A))
b = rpc.RecommenderStub(grpc.insecure_channel(GRPC_B))
known = [r["customer_id"] for r in csv.DictReader(open(os.path.join(WORK, "data", "customers.csv")))]
ids = (known + ["%064x" % (0xabc0000 + i) for i in range(2000)])[:2000]
articles = [r["article_id"] for r in csv.DictReader(open(os.path.join(WORK, "data", "articles.csv")))]


def versions(stub, batch=500):
    out = {}
    for i in range(0, len(ids), batch):
        resp = stub.Recommend(pb.RecommendRequest(customer_ids=ids[i:i + batch], k=12), timeout=60)
        mixed = len({(r.bundle_version, r.canary) for r in resp.results}) > 1
        assert resp.bundle_version == ("" if mixed else resp.results[0].bundle_version), resp.bundle_version
        for r in resp.results:
            assert len(r.article_ids) == 12, r
            assert (r.bundle_version, r.canary) in (("v1", False), ("v2", True)), (r.bundle_version, r.canary)
            out[r.customer_id] = r.bundle_version
    return out


first, again, other = versions(a), versions(a), versions(b, batch=97)
canary = [c for c in ids if first[c] == "v2"]
share = len(canary) / len(ids)
assert 0.25 <= share <= 0.35, share
assert first == again, "a customer changed arm between calls"
assert first == other, "the replicas disagree on a customer's arm"
main = [c for c in ids if first[c] == "v1"]
print(f"canary: {len(canary)} of {len(ids)} customers ({share:.1%}) on v2; the same on every call and both replicas")

# One customer alone: the response names the arm's version.
one = a.Recommend(pb.RecommendRequest(customer_ids=[canary[0]], k=5), timeout=10)
assert one.bundle_version == "v2" and one.results[0].canary, one
# SimilarArticles follows the customer's arm; without a customer, the main one.
sim = a.SimilarArticles(pb.SimilarArticlesRequest(article_ids=[articles[0]], k=5, customer_id=canary[0]), timeout=10)
assert sim.bundle_version == "v2" and sim.canary, sim
sim = a.SimilarArticles(pb.SimilarArticlesRequest(article_ids=[articles[0]], k=5), timeout=10)
assert sim.bundle_version == "v1" and not sim.canary, sim
# The inspector's customer view is the customer's arm's.
known_canary = [c for c in canary if c in set(known)][0]
profile = json.load(urllib.request.urlopen(f"{HTTP_A}/v1/customers/{known_canary}"))
assert profile["arm"] == "canary" and profile["bundle_version"] == "v2", profile
known_main = [c for c in main if c in set(known)][0]
profile = json.load(urllib.request.urlopen(f"{HTTP_A}/v1/customers/{known_main}"))
assert profile["arm"] == "main" and profile["bundle_version"] == "v1", profile
metrics = urllib.request.urlopen(METRICS_A).read().decode()
assert 'hmrec_bundle_info{arm="canary",version="v2"} 1' in metrics
assert 'hmrec_bundle_info{arm="main",version="v1"} 1' in metrics
assert 'hmrec_request_duration_seconds_count{arm="mixed",caller="anonymous",code="OK",method="Recommend"}' in metrics
assert 'hmrec_request_duration_seconds_count{arm="canary",caller="anonymous",code="OK",method="Recommend"}' in metrics

# The canary swapped (to v1) under load: no call fails, the canary's
# customers move, the main arm's stay.
failures, calls, stop = [], [0], threading.Event()


def load(stub):
    while not stop.is_set():
        try:
            stub.Recommend(pb.RecommendRequest(customer_ids=ids[:200], k=12), timeout=30)
            calls[0] += 1
        except grpc.RpcError as e:
            failures.append(e.code())


threads = [threading.Thread(target=load, args=(a,)) for _ in range(2)]
for t in threads:
    t.start()
time.sleep(0.5)
link = os.path.join(WORK, "bundles", "canary")
os.symlink("v1", link + ".new")
os.replace(link + ".new", link)
deadline = time.time() + 20
while time.time() < deadline:
    r = a.Recommend(pb.RecommendRequest(customer_ids=canary[:1], k=5), timeout=10).results[0]
    if r.bundle_version == "v1":
        break
    time.sleep(0.1)
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
assert not failures, failures[:5]
assert r.bundle_version == "v1" and r.canary, r
assert a.Recommend(pb.RecommendRequest(customer_ids=main[:1], k=5), timeout=10).results[0].bundle_version == "v1"
print(f"canary swapped v2 -> v1 under load: {calls[0]} calls, 0 failed")

# The impression log (every customer sampled) and the arms compared on the
# purchases that followed: canary customers bought what they were shown,
# main customers something else.
log = os.path.join(WORK, "impressions.jsonl")
deadline = time.time() + 10
while time.time() < deadline:
    lines = [json.loads(x) for x in open(log) if x.strip()]
    if sum(1 for x in lines if x["method"] == "Recommend") >= 2 * len(ids):
        break
    time.sleep(0.2)
assert all(set(x) >= {"time", "customer_id", "method", "bundle_version", "arm", "article_ids"} for x in lines)
first_shown = {}
for x in lines:
    if x["method"] == "Recommend" and x["bundle_version"] == "v2":
        first_shown.setdefault(x["customer_id"], x["article_ids"][0])
today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
with open(os.path.join(WORK, "purchases.csv"), "w") as f:
    f.write("t_dat,customer_id,article_id,price,sales_channel_id\n")
    for c in canary[:100]:
        f.write(f"{today},{c},{first_shown[c]},0.03,2\n")
    shown_main = {}
    for x in lines:
        if x["arm"] == "main":
            shown_main.setdefault(x["customer_id"], set()).update(x["article_ids"])
    for c in main[:100]:
        f.write(f"{today},{c},{next(art for art in articles if art not in shown_main.get(c, set()))},0.03,2\n")
out = subprocess.run([os.path.join(BUILD, "evaluate", "hmrec_evaluate"), "arms", "--impressions", log,
                      "--purchases", os.path.join(WORK, "purchases.csv"), "--json", os.path.join(WORK, "arms.json")],
                     capture_output=True, text=True)
assert out.returncode == 0, out.stderr
print(out.stdout)
arms = {(x["arm"], x["bundle_version"]): x for x in json.load(open(os.path.join(WORK, "arms.json")))["arms"]}
assert arms[("canary", "v2")]["hits"] >= 100 and arms[("canary", "v2")]["hit_rate"] > 0, arms
assert arms[("main", "v1")]["hits"] == 0 and arms[("main", "v1")]["impressions"] > 0, arms
metrics = urllib.request.urlopen(METRICS_A).read().decode()
written = [l for l in metrics.splitlines() if l.startswith('hmrec_impressions_total{result="written"}')]
assert written and float(written[0].split()[-1]) >= len(lines), written
print("impressions and arms: canary", arms[("canary", "v2")]["hit_rate"], "main", arms[("main", "v1")]["hit_rate"])
