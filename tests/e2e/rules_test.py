"""Merchandising rules against a real hmrec_server (tests/e2e/rules_test.sh).

    rules_test.py WORK BUILD GRPC HTTP METRICS PID
"""
import collections
import csv
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request

WORK, BUILD, GRPC, HTTP, METRICS, PID = sys.argv[1:7]
sys.path.insert(0, os.path.join(WORK, "py"))
import grpc  # noqa: E402
import recommender_pb2 as pb  # noqa: E402
import recommender_pb2_grpc as rpc  # noqa: E402

RULES = os.path.join(WORK, "rules", "rules.pbtxt")
UNAVAILABLE = os.path.join(WORK, "rules", "unavailable.txt")
WATCH_S = 0.3  # the config's bundle_watch_ms
stub = rpc.RecommenderStub(grpc.insecure_channel(GRPC))
customers = {r["customer_id"]: r for r in csv.DictReader(open(os.path.join(WORK, "data", "customers.csv")))}
known = sorted(customers)
unknown = ["%064x" % (0xfeed0000 + i) for i in range(100)]
ids = known[:900] + unknown  # 100 the bundle does not know: the fallback
articles = {r["article_id"]: r for r in csv.DictReader(open(os.path.join(WORK, "data", "articles.csv")))}
code = {a: r["product_code"] for a, r in articles.items()}


def write(path, text):
    """Replaces the file as operators' tools do: a new file renamed over it."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def metric(line_prefix):
    for line in urllib.request.urlopen(METRICS, timeout=10).read().decode().splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return 0.0


LOADED = 'hmrec_rules_reloads_total{result="loaded"}'
REFUSED = 'hmrec_rules_reloads_total{result="refused"}'


def wait_for(name, before, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if metric(name) > before:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} stayed at {before}")


def set_rules(text):
    before = metric(LOADED)
    write(RULES, text)
    wait_for(LOADED, before)


def lists(k=12, who=None, explain=False):
    who = ids if who is None else who
    out = {}
    for i in range(0, len(who), 250):
        resp = stub.Recommend(pb.RecommendRequest(customer_ids=who[i:i + 250], k=k, explain=explain), timeout=60)
        for r in resp.results:
            assert len(r.article_ids) == k, (r.customer_id, len(r.article_ids))
            out[r.customer_id] = r
    return out


BASE = 'unavailable_file: "unavailable.txt"\ndiversity { max_per_product_code: 1 }\n'

# 1. One article per product code, k always met (12 and 40), both APIs.
for k in (12, 40):
    got = lists(k)
    for c, r in got.items():
        codes = [code[a] for a in r.article_ids]
        assert len(set(codes)) == len(codes), (c, codes)
assert metric('hmrec_rule_articles_total{action="capped"}') > 0
sim = stub.SimilarArticles(pb.SimilarArticlesRequest(article_ids=[list(articles)[0]], k=20), timeout=10)
assert len(sim.article_ids) == 20 and len({code[a] for a in sim.article_ids}) == 20, sim
print(f"diversity: {len(ids)} customers at k=12 and k=40, no two articles of one product code; k met")

# 2. Articles made unavailable under load vanish from every API within one
# bundle_watch_ms; no call fails.
served = collections.Counter(a for r in lists().values() for a in r.article_ids)
gone = [a for a, _ in served.most_common(15)]
gone_set = set(gone)
calls, failures, stop = [], [], threading.Event()
lock = threading.Lock()


def record(started, arts):
    with lock:
        calls.append((started, set(arts)))


def grpc_load(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        batch = rng.sample(ids, 100)
        t = time.time()
        try:
            resp = stub.Recommend(pb.RecommendRequest(customer_ids=batch, k=12), timeout=30)
            for r in resp.results:
                assert len(r.article_ids) == 12
                record(t, r.article_ids)
        except Exception as e:  # noqa: BLE001
            failures.append(repr(e))


def other_load():
    rng = random.Random(7)
    while not stop.is_set():
        t = time.time()
        try:
            body = json.dumps({"customer_ids": rng.sample(ids, 20), "k": 12}).encode()
            req = urllib.request.Request(HTTP + "/v1/recommend", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            for r in json.loads(urllib.request.urlopen(req, timeout=30).read())["results"]:
                record(t, r["article_ids"])
            t = time.time()
            sim = stub.SimilarArticles(pb.SimilarArticlesRequest(article_ids=[rng.choice(list(articles))], k=12),
                                       timeout=30)
            assert len(sim.article_ids) == 12
            record(t, sim.article_ids)
        except Exception as e:  # noqa: BLE001
            failures.append(repr(e))


threads = [threading.Thread(target=grpc_load, args=(s,)) for s in (1, 2)] + [threading.Thread(target=other_load)]
for th in threads:
    th.start()
time.sleep(1.0)
changed_at = time.time()
write(UNAVAILABLE, "# recalled\n" + "\n".join(gone) + "\n")
time.sleep(3.0)
stop.set()
for th in threads:
    th.join()
assert not failures, failures[:3]
before = [c for c in calls if c[0] < changed_at]
after = [c for c in calls if c[0] > changed_at + WATCH_S]
assert sum(bool(a & gone_set) for _, a in before) > 0, "the articles were not served before: the test proves nothing"
leaks = [(t - changed_at, a & gone_set) for t, a in after if a & gone_set]
assert not leaks, leaks[:3]
last_seen = max((t - changed_at for t, a in calls if a & gone_set), default=0)
assert len(after) > 50, len(after)
print(f"unavailable: {len(gone)} articles; {len(calls)} lists under load, 0 failed calls; none served by calls "
      f"started more than {WATCH_S}s (bundle_watch_ms) after the file changed (last seen {last_seen:+.2f}s)")
for r in lists().values():
    assert not set(r.article_ids) & gone_set
assert metric('hmrec_rules_articles{kind="unavailable"}') == len(gone)
assert metric('hmrec_rule_articles_total{action="removed"}') > 0

# 3. A campaign moves its articles up only inside its dates and segment.
baseline = {c: list(r.article_ids) for c, r in lists(explain=True).items()}
types = collections.Counter(articles[a]["product_type_name"] for l in baseline.values() for a in l[6:])
target = types.most_common(3)[-1][0]
ages = sorted(int(r["age"]) for r in customers.values() if r["age"])
lo, hi = ages[len(ages) // 4], ages[3 * len(ages) // 4]


def in_segment(c):
    r = customers.get(c)
    return r is not None and r["age"] != "" and lo <= int(r["age"]) <= hi and r["club_member_status"] == "ACTIVE"


def campaign(start, end):
    return BASE + f'''segments {{ name: "core" min_age: {lo} max_age: {hi} club_member_status: "ACTIVE" }}
campaigns {{
  name: "winter" segments: "core" score_factor: 3
  articles {{ product_type_name: "{target}" }}
  start_date: "{start}" end_date: "{end}"
}}
'''


set_rules(campaign("2026-12-01", "2026-12-14"))  # the server's rules_date is 2026-12-05
inside = lists(explain=True)
moved_up = changed = 0
for c, r in inside.items():
    new = list(r.article_ids)
    if not in_segment(c):
        assert new == baseline[c], (c, "outside the segment, the list changed")
        assert "campaign:winter" not in r.rules
        continue
    for p, a in enumerate(new):
        if articles[a]["product_type_name"] == target and a in baseline[c]:
            assert p <= baseline[c].index(a), (c, a, p, baseline[c].index(a))
            moved_up += p < baseline[c].index(a)
    if new != baseline[c]:
        changed += 1
        assert "campaign:winter" in r.rules, r.rules
        assert any("campaign:winter" in e.rules for e in r.explanations)
segment_size = sum(in_segment(c) for c in ids)
assert segment_size > 20 and changed > 0 and moved_up > 0, (segment_size, changed, moved_up)
set_rules(campaign("2026-12-06", "2026-12-14"))  # starts after the server's day
outside = lists()
assert all(list(r.article_ids) == baseline[c] for c, r in outside.items()), "a campaign acted outside its dates"
assert metric('hmrec_rule_articles_total{action="boosted"}') > 0
print(f"campaign: {target} x3 for {segment_size} customers aged {lo}-{hi}, ACTIVE: {changed} lists changed, "
      f"{moved_up} articles moved up; every other customer's list, and every list outside the dates, unchanged")

# 4. A pin takes its position for everyone; a bad file is refused and the
# rules in force stay; SIGHUP re-reads.
hero = next(a for a, _ in served.most_common()[40:] if a not in gone_set)
set_rules(BASE + f'pins {{ name: "hero" article_id: "{hero}" position: 2 }}\n')
pinned = lists()
assert all(r.article_ids[1] == hero and "pin:hero" in r.rules for r in pinned.values())
assert metric('hmrec_rule_articles_total{action="pinned"}') >= len(pinned)
refused = metric(REFUSED)
write(RULES, "diversity { max_per_product_code: -1 }\n")
wait_for(REFUSED, refused)
assert all(r.article_ids[1] == hero for r in lists().values()), "the rules in force did not stay"
loaded = metric(LOADED)
os.kill(int(PID), signal.SIGHUP)  # the file is still bad: refused again, on the signal
wait_for(REFUSED, refused + 1)
write(RULES, BASE)
wait_for(LOADED, loaded)
assert all("pin:hero" not in r.rules for r in lists().values()), "the pin outlived its rules"
before_hup = metric(LOADED)
os.kill(int(PID), signal.SIGHUP)
wait_for(LOADED, before_hup)
print("pin: at position 2 in every list; a bad file refused (the rules in force stayed); SIGHUP re-read the file")

# 5. The inspector's view of the rules in force.
view = json.loads(urllib.request.urlopen(HTTP + "/v1/rules", timeout=10).read())
assert view["source"] == RULES and view["unavailable_articles"] == len(gone), view
assert view["rules"]["diversity"]["max_per_product_code"] == 1, view
print("inspector: /v1/rules shows the rules in force")

# 6. Caps that k articles cannot meet: one article per product type in lists
# of 40 (the tiny catalogue has fewer types): k still met, the lists counted;
# an id of no article is counted, not refused.
unmet = metric("hmrec_rules_caps_unmet_total")
set_rules('unavailable_file: "unavailable.txt"\nunavailable_article_ids: "0999999999"\n'
          'diversity { max_per_product_type: 1 }\n')
types = {a["product_type_name"] for a in articles.values()}
assert len(types) < 40, len(types)
got = lists(k=40)
assert metric("hmrec_rules_caps_unmet_total") >= unmet + len(got)
assert metric('hmrec_rules_articles{kind="unknown"}') == 1
print(f"caps unmet: {len(got)} lists of 40 with one per product type ({len(types)} types) filled anyway, counted")
