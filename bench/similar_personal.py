"""SimilarArticles personalised or not, through the real server: for each
query of `hmrec_evaluate similar --examples_out` (a customer's last article
X before the held-out days, and what they bought within days after it), the
served list for X alone and for X with the customer's id; MAP@12 and hit
rate@12 of each, as similar/similar_eval.h counts them.

  bench/similar_personal.py HTTP_URL EXAMPLES_CSV [--k 12] [--json OUT]
"""
import argparse
import csv
import json
import urllib.request


def post(http, body):
    req = urllib.request.Request(http + "/v1/similar", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def ap_at_k(predicted, relevant, k):
    hits, total = 0, 0.0
    for i, p in enumerate(predicted[:k]):
        if p in relevant and p not in predicted[:i]:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("http")
    ap.add_argument("examples")
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.examples, newline="")))
    score = {"plain": [0.0, 0], "personalised": [0.0, 0]}
    personalised = 0
    for r in rows:
        relevant = set(r["relevant"].split())
        for arm, body in (("plain", {"article_ids": [r["article_id"]], "k": a.k}),
                          ("personalised", {"article_ids": [r["article_id"]], "k": a.k,
                                            "customer_id": r["customer_id"]})):
            out = post(a.http, body)
            ids = out["article_ids"]
            score[arm][0] += ap_at_k(ids, relevant, a.k)
            score[arm][1] += bool(relevant & set(ids[:a.k]))
            personalised += arm == "personalised" and out.get("personalised", False)
    n = len(rows)
    result = {arm: {"map_at_12": s[0] / n, "hit_rate": s[1] / n} for arm, s in score.items()}
    result["queries"] = n
    result["personalised_answers"] = personalised
    for arm in ("plain", "personalised"):
        print(f"{arm:13s} MAP@{a.k} {result[arm]['map_at_12']:.5f}  hit rate@{a.k} {result[arm]['hit_rate']:.4f}")
    print(f"{n} queries, {personalised} answered personalised")
    if a.json:
        json.dump(result, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
