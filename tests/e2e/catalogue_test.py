"""The catalogue refresh against the real server (tests/e2e/catalogue_test.sh).

  catalogue_test.py load HTTP STOP_FILE OUT_JSON CUSTOMERS_CSV ARTICLES_CSV
      Recommend and SimilarArticles calls in a loop until STOP_FILE exists;
      writes {"calls", "failures", "versions", "errors"} to OUT_JSON.
  catalogue_test.py check HTTP NEWER_ARTICLES_CSV CUSTOMERS_CSV TRANSACTIONS_CSV WITHHELD
      Asserts what the refreshed bundle serves of the articles it added.
  catalogue_test.py record PY_STUBS GRPC_TARGET HTTP CUSTOMER ARTICLE
      Records (gRPC) a purchase of a new article on the bundle's first
      served day; the customer's next list is answered (12 distinct) and
      differs from the one before.
"""
import collections
import csv
import json
import os
import sys
import urllib.error
import urllib.request


def post(http, path, body):
    req = urllib.request.Request(http + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def load(http, stop, out, customers_csv, articles_csv):
    customers = [r["customer_id"] for r in csv.DictReader(open(customers_csv))][:200]
    articles = [r["article_id"] for r in csv.DictReader(open(articles_csv))][:200]
    calls = failures = 0
    versions = collections.Counter()
    errors = []
    i = 0
    while not os.path.exists(stop):
        try:
            if i % 2 == 0:
                r = post(http, "/v1/recommend", {"customer_ids": customers[i % 190:i % 190 + 8], "k": 12})
                ok = all(len(x["article_ids"]) == 12 for x in r["results"])
            else:
                r = post(http, "/v1/similar", {"article_ids": [articles[i % len(articles)]], "k": 12})
                ok = len(r["article_ids"]) == 12
            versions[r.get("bundle_version", "")] += 1
            if not ok:
                failures += 1
                errors.append("short list")
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            failures += 1
            errors.append(str(e)[:200])
        calls += 1
        i += 1
    json.dump({"calls": calls, "failures": failures, "versions": versions, "errors": errors[:5]}, open(out, "w"))


def check(http, articles_csv, customers_csv, transactions_csv, withheld_file):
    arts = {r["article_id"]: r for r in csv.DictReader(open(articles_csv))}
    new = [line.strip() for line in open(withheld_file) if line.strip()]
    bundle = json.load(urllib.request.urlopen(http + "/v1/bundle", timeout=10))
    assert int(bundle["catalogue_added_articles"]) == len(new), bundle
    assert bundle["catalogue_base_version"] == "v1", bundle

    # SimilarArticles of each new article: k distinct known ids, never the
    # query, mostly of its product type (far above the chance of a random list).
    same = total = 0
    for a in new:
        r = post(http, "/v1/similar", {"article_ids": [a], "k": 12, "explain": True})
        ids = r["article_ids"]
        assert len(ids) == 12 and len(set(ids)) == 12 and a not in ids, r
        assert all(i in arts for i in ids), r
        assert not r.get("unknown_article_ids") and not r.get("fallback"), r
        same += sum(arts[i]["product_type_no"] == arts[a]["product_type_no"] for i in ids)
        total += len(ids)
    types = collections.Counter(x["product_type_no"] for x in arts.values())
    chance = sum(c * c for c in types.values()) / len(arts) ** 2
    share = same / total
    print(f"similar lists of new articles: {share:.2f} share their type (a random list: {chance:.2f})")
    assert share > 0.5 and share > 3 * chance, (share, chance)

    # A new article is reached from an older one: among its product's
    # variants' similar articles, or in a basket of its type.
    reached = 0
    for a in new:
        siblings = [i for i, x in arts.items() if x["product_code"] == arts[a]["product_code"] and i not in new]
        if siblings:
            reached += a in post(http, "/v1/similar", {"article_ids": siblings[:1], "k": 24})["article_ids"]
    print(f"new articles among their product's variants' 24 similar: {reached}")

    # Recommend: the customers whose taste fits a new article (the most
    # purchases of its product type) are shown new articles.
    bought = collections.defaultdict(collections.Counter)
    with open(transactions_csv) as f:
        for t in csv.DictReader(f):
            if t["article_id"] in arts:
                bought[arts[t["article_id"]]["product_type_no"]][t["customer_id"]] += 1
    fits = []
    for a in new:
        fits += [c for c, _ in bought[arts[a]["product_type_no"]].most_common(3)]
    fits = sorted(set(fits))
    # The ranker has never seen them sell: the server's new_article_position
    # (12) gives the best-ranked of a customer's new candidates the 12th
    # place, flagged new_in_catalogue, when the ranker put none higher.
    shown = placed = 0
    for b in range(0, len(fits), 50):
        for res in post(http, "/v1/recommend", {"customer_ids": fits[b:b + 50], "k": 12, "explain": True})["results"]:
            assert len(res["article_ids"]) == 12, res
            shown += sum(i in new for i in res["article_ids"])
            for pos, (i, why) in enumerate(zip(res["article_ids"], res["explanations"])):
                if why.get("new_in_catalogue"):
                    assert i in new and pos == 11 and why["reasons"], res
                    placed += 1
    print(f"new articles in the 12 of {len(fits)} customers whose taste fits them: {shown} ({placed} placed 12th)")
    assert shown * 2 >= len(fits), f"new articles reached {shown} of {len(fits)} customers whose taste fits them"


def record(stubs, target, http, customer, article):
    sys.path.insert(0, stubs)
    import grpc
    import recommender_pb2
    import recommender_pb2_grpc

    day = json.load(urllib.request.urlopen(http + "/v1/bundle", timeout=10))["features_as_of"]
    stub = recommender_pb2_grpc.RecommenderStub(grpc.insecure_channel(target))
    event = recommender_pb2.PurchaseEvent(customer_id=customer, article_id=article, t_dat=day, price=0.03,
                                          sales_channel_id=2, event_id="catalogue-test-1")
    before = post(http, "/v1/recommend", {"customer_ids": [customer], "k": 12})["results"][0]["article_ids"]
    r = stub.RecordPurchases(recommender_pb2.RecordPurchasesRequest(events=[event]), timeout=10)
    assert r.recorded == 1, r
    after = post(http, "/v1/recommend", {"customer_ids": [customer], "k": 12})["results"][0]["article_ids"]
    assert len(after) == 12 and len(set(after)) == 12, after
    assert after != before, "a recorded purchase of a new article changed nothing"
    print(f"after a purchase of new article {article}: {after}")


if __name__ == "__main__":
    {"load": load, "check": check, "record": record}[sys.argv[1]](*sys.argv[2:7])
